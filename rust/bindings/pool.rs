//! Bindings of the 2-D pooling kernels (NCHW).

use super::arrays::{with_float, Args, Arr, Borrow, In, Out, ANY};
use super::scalars::natural_usize;
use crate::error::Error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use saddlepoint_kernels::pool::{self, nchw, AdaptivePool2d, Pool2d};

/// A `(height, width)` pair of non-negative integers (a tuple or list of two).
fn pair(obj: &Bound<'_, PyAny>) -> PyResult<[usize; 2]> {
    let items: Vec<Bound<'_, PyAny>> = match obj.extract() {
        Ok(items) if !obj.is_instance_of::<pyo3::types::PyString>() => items,
        _ => return Err(PyTypeError::new_err("must be a (height, width) pair of integers")),
    };
    match items.as_slice() {
        [h, w] => Ok([natural_usize(h)?, natural_usize(w)?]),
        _ => Err(PyTypeError::new_err(format!(
            "must be a (height, width) pair of integers, got {} items",
            items.len()
        ))),
    }
}

/// Max pooling of `x` (N, C, H, W) into `out` (N, C, OH, OW), with `indices` (int64, same
/// shape) the flat position `h * W + w` of each maximum in its input plane (PyTorch's
/// `return_indices`). `OH = (H + 2 * padding[0] - kernel_size[0]) // stride[0] + 1`, alike OW.
#[pyfunction]
#[pyo3(signature = (x, kernel_size, stride, padding, out, indices))]
pub fn max_pool2d_forward(
    py: Python<'_>, x: Arr, #[pyo3(from_py_with = pair)] kernel_size: [usize; 2],
    #[pyo3(from_py_with = pair)] stride: [usize; 2], #[pyo3(from_py_with = pair)] padding: [usize; 2],
    out: Arr, indices: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "max_pool2d_forward");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let p = Pool2d::new("x", x.shape(), kernel_size, stride, padding)?;
        let mut out: Out<T> = a.arg(out, "out", &p.out_shape())?;
        let mut indices: Out<i64> = a.arg(indices, "indices", &p.out_shape())?;
        let (x, out, indices) = (&*x, &mut *out, &mut *indices);
        a.run(|| pool::max_pool2d_forward(x, out, indices, &p))
    })
}

/// Max pooling backward: `grad_input` (N, C, H, W) is overwritten with zeros plus, at each
/// recorded maximum, the sum of `grad_output` (N, C, OH, OW) over the outputs it was the
/// maximum of; `indices` as `max_pool2d_forward` wrote them, each in [0, H * W).
#[pyfunction]
#[pyo3(signature = (grad_output, indices, grad_input))]
pub fn max_pool2d_backward(
    py: Python<'_>, grad_output: Arr, indices: Arr, grad_input: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "max_pool2d_backward");
    with_float!(grad_output, "grad_output", |T| {
        let grad_output: In<T> = a.arg(grad_output, "grad_output", ANY)?;
        let [batch, channels, out_height, out_width] = nchw("grad_output", grad_output.shape())?;
        let indices: In<i64> = a.arg(indices, "indices", grad_output.shape())?;
        let mut grad_input: Out<T> = a.arg(grad_input, "grad_input", ANY)?;
        let [in_batch, in_channels, height, width] = nchw("grad_input", grad_input.shape())?;
        if (in_batch, in_channels) != (batch, channels) {
            let expected = [batch, channels, height, width];
            super::arrays::check_shape("grad_input", grad_input.shape(), &expected)?;
        }
        let (grad_output, indices, grad_input) = (&*grad_output, &*indices, &mut *grad_input);
        let (planes, in_plane, out_plane) = (batch * channels, height * width, out_height * out_width);
        a.run(|| pool::max_pool2d_backward(grad_output, indices, grad_input, planes, in_plane, out_plane))
    })
}

/// Average pooling of `x` (N, C, H, W) into `out` (N, C, OH, OW): each window's sum divided by
/// `kernel_size[0] * kernel_size[1]` (the padding counts as zeros, PyTorch's default).
#[pyfunction]
#[pyo3(signature = (x, kernel_size, stride, padding, out))]
pub fn avg_pool2d_forward(
    py: Python<'_>, x: Arr, #[pyo3(from_py_with = pair)] kernel_size: [usize; 2],
    #[pyo3(from_py_with = pair)] stride: [usize; 2], #[pyo3(from_py_with = pair)] padding: [usize; 2],
    out: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "avg_pool2d_forward");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let p = Pool2d::new("x", x.shape(), kernel_size, stride, padding)?;
        let mut out: Out<T> = a.arg(out, "out", &p.out_shape())?;
        let (x, out) = (&*x, &mut *out);
        a.run(|| pool::avg_pool2d_forward(x, out, &p))
    })
}

/// Average pooling backward: `grad_input` (N, C, H, W), overwritten, from `grad_output`
/// (N, C, OH, OW), the pooled shape of `grad_input` with these settings.
#[pyfunction]
#[pyo3(signature = (grad_output, kernel_size, stride, padding, grad_input))]
pub fn avg_pool2d_backward(
    py: Python<'_>, grad_output: Arr, #[pyo3(from_py_with = pair)] kernel_size: [usize; 2],
    #[pyo3(from_py_with = pair)] stride: [usize; 2], #[pyo3(from_py_with = pair)] padding: [usize; 2],
    grad_input: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "avg_pool2d_backward");
    with_float!(grad_output, "grad_output", |T| {
        let mut grad_input: Out<T> = a.arg(grad_input, "grad_input", ANY)?;
        let p = Pool2d::new("grad_input", grad_input.shape(), kernel_size, stride, padding)?;
        let grad_output: In<T> = a.arg(grad_output, "grad_output", &p.out_shape())?;
        let (grad_output, grad_input) = (&*grad_output, &mut *grad_input);
        a.run(|| pool::avg_pool2d_backward(grad_output, grad_input, &p))
    })
}

/// Adaptive average pooling of `x` (N, C, H, W) into `out` (N, C, OH, OW), any OH, OW >= 1:
/// output row i averages input rows [floor(i * H / OH), ceil((i + 1) * H / OH)), alike columns.
#[pyfunction]
#[pyo3(signature = (x, out))]
pub fn adaptive_avg_pool2d_forward(py: Python<'_>, x: Arr, out: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "adaptive_avg_pool2d_forward");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let mut out: Out<T> = a.arg(out, "out", ANY)?;
        let p = AdaptivePool2d::new(("x", x.shape()), ("out", out.shape()))?;
        let (x, out) = (&*x, &mut *out);
        a.run(|| pool::adaptive_avg_pool2d_forward(x, out, &p))
    })
}

/// Adaptive average pooling backward: `grad_input` (N, C, H, W), overwritten, from
/// `grad_output` (N, C, OH, OW).
#[pyfunction]
#[pyo3(signature = (grad_output, grad_input))]
pub fn adaptive_avg_pool2d_backward(py: Python<'_>, grad_output: Arr, grad_input: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "adaptive_avg_pool2d_backward");
    with_float!(grad_output, "grad_output", |T| {
        let grad_output: In<T> = a.arg(grad_output, "grad_output", ANY)?;
        let mut grad_input: Out<T> = a.arg(grad_input, "grad_input", ANY)?;
        let p =
            AdaptivePool2d::new(("grad_input", grad_input.shape()), ("grad_output", grad_output.shape()))?;
        let (grad_output, grad_input) = (&*grad_output, &mut *grad_input);
        a.run(|| pool::adaptive_avg_pool2d_backward(grad_output, grad_input, &p))
    })
}
