//! Binding of the mini-batch gather.

use super::arrays::{dims, dispatch_float, read, slice, slice_mut, write_shaped};
use crate::error::Error;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::{gather, Float};

/// `out = x[indices]` for the rows of a 2-D `x`, into a preallocated `out`.
#[pyfunction]
pub fn gather_rows(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(x, "x", gather_typed(py, x, indices, out))
}

fn gather_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let x = read::<T>(x, "x")?;
    let [_, cols] = dims::<2>("x", x.shape())?;
    let indices = read::<i64>(indices, "indices")?;
    let [n] = dims::<1>("indices", indices.shape())?;
    let mut out = write_shaped::<T>(out, "out", &[n, cols])?;
    let (xs, is, os) = (
        slice(&x, "x")?,
        slice(&indices, "indices")?,
        slice_mut(&mut out, "out")?,
    );
    py.detach(|| gather::gather_rows(xs, cols, is, os))?;
    Ok(())
}
