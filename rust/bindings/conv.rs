//! Bindings of the 2-D convolution kernels.

use super::arrays::{with_float, Args, Arr, Borrow, In, OptArr, Out, ANY};
use super::scalars::int64;
use crate::error::Error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use saddlepoint_kernels::conv::{self, ConvGrads, ConvShape};

/// A pair of integers `(h, w)` (a tuple or list of two ints); out of the 64-bit range a
/// `ValueError`, anything else a `TypeError`.
fn int_pair(obj: &Bound<'_, PyAny>) -> PyResult<[i64; 2]> {
    let (h, w): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
        obj.extract().map_err(|_| PyTypeError::new_err("must be a pair of integers (h, w)"))?;
    Ok([int64(&h)?, int64(&w)?])
}

/// `out = conv2d(x, weight) + bias` (PyTorch's cross-correlation) for `x` (N, C, H, W),
/// `weight` (O, C / groups, kh, kw), `bias` (O,) or None, `out` (N, O, OH, OW); `columns`
/// (N·C·kh·kw·OH·OW,) or None receives the column matrices for `conv2d_backward`.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, out, stride, padding, dilation, groups, columns = None))]
pub fn conv2d_forward(
    py: Python<'_>, x: Arr, weight: Arr, bias: OptArr, out: Arr,
    #[pyo3(from_py_with = int_pair)] stride: [i64; 2], #[pyo3(from_py_with = int_pair)] padding: [i64; 2],
    #[pyo3(from_py_with = int_pair)] dilation: [i64; 2], #[pyo3(from_py_with = int64)] groups: i64,
    columns: OptArr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "conv2d_forward");
    with_float!(x, "x", |T| {
        let (x, weight): (In<T>, In<T>) = (a.arg(x, "x", ANY)?, a.arg(weight, "weight", ANY)?);
        let shape = ConvShape::of(x.shape(), weight.shape(), stride, padding, dilation, groups)?;
        let bias: Option<In<T>> = a.opt(bias, "bias", &[shape.out_channels])?;
        let mut out: Out<T> = a.arg(out, "out", &shape.out_shape())?;
        let mut columns: Option<Out<T>> = a.opt(columns, "columns", &[shape.columns_len()])?;
        let (x, weight, bias, out, columns) =
            (&*x, &*weight, bias.as_deref(), &mut *out, columns.as_deref_mut());
        a.run(|| conv::conv2d_forward(x, weight, bias, out, columns, shape))
    })
}

/// Backward pass of a convolution: `grad_weight += ` the weight gradient, `grad_bias +=
/// grad_output.sum((0, 2, 3))` (`=` with `accumulate=False`), `grad_input = ` the input
/// gradient; any may be None. `columns`: what `conv2d_forward` wrote to its `columns` for this
/// `x`, reused for the weight gradient, or None.
#[pyfunction]
#[pyo3(signature = (x, weight, grad_output, grad_weight, grad_bias, grad_input, stride, padding, dilation, groups, accumulate = true, columns = None))]
pub fn conv2d_backward(
    py: Python<'_>, x: Arr, weight: Arr, grad_output: Arr, grad_weight: OptArr, grad_bias: OptArr,
    grad_input: OptArr, #[pyo3(from_py_with = int_pair)] stride: [i64; 2],
    #[pyo3(from_py_with = int_pair)] padding: [i64; 2], #[pyo3(from_py_with = int_pair)] dilation: [i64; 2],
    #[pyo3(from_py_with = int64)] groups: i64, accumulate: bool, columns: OptArr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "conv2d_backward");
    with_float!(x, "x", |T| {
        let (x, w): (In<T>, In<T>) = (a.arg(x, "x", ANY)?, a.arg(weight, "weight", ANY)?);
        let shape = ConvShape::of(x.shape(), w.shape(), stride, padding, dilation, groups)?;
        let dy: In<T> = a.arg(grad_output, "grad_output", &shape.out_shape())?;
        let mut gw: Option<Out<T>> = a.opt(grad_weight, "grad_weight", w.shape())?;
        let mut gb: Option<Out<T>> = a.opt(grad_bias, "grad_bias", &[shape.out_channels])?;
        let mut gx: Option<Out<T>> = a.opt(grad_input, "grad_input", x.shape())?;
        let columns: Option<In<T>> = a.opt(columns, "columns", &[shape.columns_len()])?;
        let (weight, bias, input) = (gw.as_deref_mut(), gb.as_deref_mut(), gx.as_deref_mut());
        let (x, w, dy, grads) = (&*x, &*w, &*dy, ConvGrads { weight, bias, input, accumulate });
        let columns = columns.as_deref();
        a.run(|| conv::conv2d_backward(x, w, dy, columns, grads, shape))
    })
}
