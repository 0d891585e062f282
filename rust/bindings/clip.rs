//! Bindings of the gradient-clipping helpers.

use super::arrays::{with_float, Args, Arr, In, Out, ANY};
use super::scalars::real;
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::clip;

/// `Σ|x|^p` of an array (or `max|x|` for p = inf), for a joint gradient norm.
#[pyfunction]
pub fn norm_part(py: Python<'_>, x: Arr, #[pyo3(from_py_with = real)] norm_type: f64) -> Result<f64, Error> {
    let mut a = Args::new(py, "norm_part");
    with_float!(x, "x", |T| {
        let x = &*a.arg::<In<T>>(x, "x", ANY)?;
        a.run(|| clip::norm_part(x, norm_type))
    })
}

/// Whether every element of `x` is finite (no NaN, no infinity).
#[pyfunction]
pub fn all_finite(py: Python<'_>, x: Arr) -> Result<bool, Error> {
    let mut a = Args::new(py, "all_finite");
    with_float!(x, "x", |T| {
        let x = &*a.arg::<In<T>>(x, "x", ANY)?;
        a.run(|| Ok(clip::all_finite(x)))
    })
}

/// `x *= factor` in place.
#[pyfunction]
pub fn scale_(py: Python<'_>, x: Arr, #[pyo3(from_py_with = real)] factor: f64) -> Result<(), Error> {
    let mut a = Args::new(py, "scale_");
    with_float!(x, "x", |T| {
        let x = &mut *a.arg::<Out<T>>(x, "x", ANY)?;
        a.run(|| {
            clip::scale(x, factor);
            Ok(())
        })
    })
}

/// Clamps `x` to `[-clip_value, clip_value]` in place.
#[pyfunction]
pub fn clamp_(py: Python<'_>, x: Arr, #[pyo3(from_py_with = real)] clip_value: f64) -> Result<(), Error> {
    let mut a = Args::new(py, "clamp_");
    with_float!(x, "x", |T| {
        let x = &mut *a.arg::<Out<T>>(x, "x", ANY)?;
        a.run(|| clip::clamp(x, clip_value))
    })
}
