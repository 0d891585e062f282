//! Bindings of the dense layer kernels.

use super::arrays::{with_float, Args, Arr, Borrow, In, OptArr, Out, ANY};
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::dense::{self, DenseGrads, DenseShape};

/// `out = x @ weight.T + bias` for `x` (batch, in), `weight` (out, in), `bias` (out,) or None.
/// No input features: `out = bias` (or zeros); no rows or outputs: an empty `out`.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, out))]
pub fn dense_forward(py: Python<'_>, x: Arr, weight: Arr, bias: OptArr, out: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "dense_forward");
    with_float!(x, "x", |T| {
        let (x, weight): (In<T>, In<T>) = (a.arg(x, "x", ANY)?, a.arg(weight, "weight", ANY)?);
        let shape = DenseShape::of(x.shape(), weight.shape())?;
        let bias: Option<In<T>> = a.opt(bias, "bias", &[shape.out_features])?;
        let mut out: Out<T> = a.arg(out, "out", &[shape.batch, shape.out_features])?;
        let (x, weight, bias, out) = (&*x, &*weight, bias.as_deref(), &mut *out);
        a.run(|| dense::dense_forward(x, weight, bias, out, shape))
    })
}

/// Backward pass of a dense layer: `grad_weight += grad_output.T @ x`,
/// `grad_bias += grad_output.sum(0)` (`=` with `accumulate=False`), `grad_input = grad_output @
/// weight`; any may be None.
#[pyfunction]
#[pyo3(signature = (x, weight, grad_output, grad_weight, grad_bias, grad_input, accumulate = true))]
pub fn dense_backward(
    py: Python<'_>, x: Arr, weight: Arr, grad_output: Arr, grad_weight: OptArr, grad_bias: OptArr,
    grad_input: OptArr, accumulate: bool,
) -> Result<(), Error> {
    let mut a = Args::new(py, "dense_backward");
    with_float!(x, "x", |T| {
        let (x, w): (In<T>, In<T>) = (a.arg(x, "x", ANY)?, a.arg(weight, "weight", ANY)?);
        let shape = DenseShape::of(x.shape(), w.shape())?;
        let (batch, n_in, n_out) = (shape.batch, shape.in_features, shape.out_features);
        let dy: In<T> = a.arg(grad_output, "grad_output", &[batch, n_out])?;
        let mut gw: Option<Out<T>> = a.opt(grad_weight, "grad_weight", &[n_out, n_in])?;
        let mut gb: Option<Out<T>> = a.opt(grad_bias, "grad_bias", &[n_out])?;
        let mut gx: Option<Out<T>> = a.opt(grad_input, "grad_input", &[batch, n_in])?;
        let (weight, bias, input) = (gw.as_deref_mut(), gb.as_deref_mut(), gx.as_deref_mut());
        let (x, w, dy, grads) = (&*x, &*w, &*dy, DenseGrads { weight, bias, input, accumulate });
        a.run(|| dense::dense_backward(x, w, dy, grads, shape))
    })
}
