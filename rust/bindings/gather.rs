//! Binding of the mini-batch gather.

use super::arrays::{with_float, Args, Arr, Borrow, In, Out, ANY};
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::error::dims;
use saddlepoint_kernels::gather;

/// `out = x[indices]` for the rows of a 2-D `x`, into a preallocated `out`. No indices or no
/// columns: an empty `out` (indices are still checked against the rows).
#[pyfunction]
pub fn gather_rows(py: Python<'_>, x: Arr, indices: Arr, out: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "gather_rows");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let [rows, cols] = dims::<2>("x", x.shape())?;
        let indices: In<i64> = a.arg(indices, "indices", ANY)?;
        let [n] = dims::<1>("indices", indices.shape())?;
        let mut out: Out<T> = a.arg(out, "out", &[n, cols])?;
        let (x, indices, out) = (&*x, &*indices, &mut *out);
        a.run(|| gather::gather_rows(x, rows, cols, indices, out))
    })
}
