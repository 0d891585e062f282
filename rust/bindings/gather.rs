//! Binding of the mini-batch gather.

use super::arrays::{dims, dispatch_float, slice, slice_mut, Args};
use crate::error::Error;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::{gather, Float};

/// `out = x[indices]` for the rows of a 2-D `x`, into a preallocated `out`. No indices or no
/// columns: an empty `out` (indices are still checked against the rows).
#[pyfunction]
pub fn gather_rows(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(x, "x", gather_typed(py, x, indices, out))
}

fn gather_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "gather_rows");
    let x = args.read::<T>(x, "x")?;
    let [rows, cols] = dims::<2>("x", x.shape())?;
    let indices = args.read::<i64>(indices, "indices")?;
    let [n] = dims::<1>("indices", indices.shape())?;
    let mut out = args.write_shaped::<T>(out, "out", &[n, cols])?;
    let (xs, is, os) = (
        slice(&x, "x")?,
        slice(&indices, "indices")?,
        slice_mut(&mut out, "out")?,
    );
    args.run(|| gather::gather_rows(xs, rows, cols, is, os))
}
