//! Bindings of the dense layer kernels.

use super::arrays::{dims, with_float, Args, Arr, OptArr};
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::matmul::{self, DenseGrads, DenseShape};

/// Reads the layer's shape from `x` (batch, in) and `weight` (out, in).
fn dense_shape(x: &[usize], weight: &[usize]) -> Result<DenseShape, Error> {
    let [batch, in_features] = dims::<2>("x", x)?;
    let [out_features, weight_in] = dims::<2>("weight", weight)?;
    if weight_in != in_features {
        return Err(Error::Value(format!(
            "weight must have shape (out_features, {in_features}) to match x's {in_features} \
             features, got ({out_features}, {weight_in})"
        )));
    }
    Ok(DenseShape {
        batch,
        in_features,
        out_features,
    })
}

/// `out = x @ weight.T + bias` for `x` (batch, in), `weight` (out, in), `bias` (out,) or None.
/// No input features: `out = bias` (or zeros); no rows or outputs: an empty `out`.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, out))]
pub fn dense_forward(
    py: Python<'_>,
    x: Arr,
    weight: Arr,
    bias: OptArr,
    out: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "dense_forward");
    with_float!(x, "x", |T| {
        let (x, weight) = (a.read::<T>(x, "x")?, a.read::<T>(weight, "weight")?);
        let shape = dense_shape(x.shape(), weight.shape())?;
        let bias = a.read_opt::<T>(bias, "bias", &[shape.out_features])?;
        let mut out = a.write_like::<T>(out, "out", &[shape.batch, shape.out_features])?;
        let (xs, ws, bs, os) = (&*x, &*weight, bias.as_deref(), &mut *out);
        a.run(|| matmul::dense_forward(xs, ws, bs, os, shape))
    })
}

/// Backward pass of a dense layer: `grad_weight += grad_output.T @ x`,
/// `grad_bias += grad_output.sum(0)` (`=` with `accumulate=False`), `grad_input = grad_output @
/// weight`; any may be None.
#[pyfunction]
#[pyo3(signature = (x, weight, grad_output, grad_weight, grad_bias, grad_input, accumulate = true))]
pub fn dense_backward(
    py: Python<'_>,
    x: Arr,
    weight: Arr,
    grad_output: Arr,
    grad_weight: OptArr,
    grad_bias: OptArr,
    grad_input: OptArr,
    accumulate: bool,
) -> Result<(), Error> {
    let mut a = Args::new(py, "dense_backward");
    with_float!(x, "x", |T| {
        let (x, weight) = (a.read::<T>(x, "x")?, a.read::<T>(weight, "weight")?);
        let shape = dense_shape(x.shape(), weight.shape())?;
        let (batch, n_in, n_out) = (shape.batch, shape.in_features, shape.out_features);
        let dy = a.read_like::<T>(grad_output, "grad_output", &[batch, n_out])?;
        let mut gw = a.write_opt::<T>(grad_weight, "grad_weight", &[n_out, n_in])?;
        let mut gb = a.write_opt::<T>(grad_bias, "grad_bias", &[n_out])?;
        let mut gx = a.write_opt::<T>(grad_input, "grad_input", &[batch, n_in])?;
        let (xs, ws, dys) = (&*x, &*weight, &*dy);
        let (weight, bias, input) = (gw.as_deref_mut(), gb.as_deref_mut(), gx.as_deref_mut());
        let grads = DenseGrads {
            weight,
            bias,
            input,
            accumulate,
        };
        a.run(|| matmul::dense_backward(xs, ws, dys, grads, shape))
    })
}
