//! Binding of the mini-batch gather.

use super::arrays::{dims, with_float, Args, Arr};
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::gather;

/// `out = x[indices]` for the rows of a 2-D `x`, into a preallocated `out`. No indices or no
/// columns: an empty `out` (indices are still checked against the rows).
#[pyfunction]
pub fn gather_rows(py: Python<'_>, x: Arr, indices: Arr, out: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "gather_rows");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let [rows, cols] = dims::<2>("x", x.shape())?;
        let indices = a.read::<i64>(indices, "indices")?;
        let [n] = dims::<1>("indices", indices.shape())?;
        let mut out = a.write_like::<T>(out, "out", &[n, cols])?;
        let (xs, is, os) = (&*x, &*indices, &mut *out);
        a.run(|| gather::gather_rows(xs, rows, cols, is, os))
    })
}
