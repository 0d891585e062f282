//! Bindings of the dense layer kernels.

use super::arrays::{dims, dispatch_float, slice, slice_mut, slice_mut_opt, slice_opt, Args};
use crate::error::Error;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::matmul::{self, DenseGrads, DenseShape};
use saddlepoint_kernels::Float;

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
    x: &Bound<'_, PyAny>,
    weight: &Bound<'_, PyAny>,
    bias: Option<&Bound<'_, PyAny>>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(x, "x", forward_typed(py, x, weight, bias, out))
}

fn forward_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    out: &Bound<'py, PyAny>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "dense_forward");
    let (x, weight) = (args.read::<T>(x, "x")?, args.read::<T>(weight, "weight")?);
    let shape = dense_shape(x.shape(), weight.shape())?;
    let bias = args.read_opt::<T>(bias, "bias", &[shape.out_features])?;
    let mut out = args.write_shaped::<T>(out, "out", &[shape.batch, shape.out_features])?;
    let (xs, ws, bs) = (
        slice(&x, "x")?,
        slice(&weight, "weight")?,
        slice_opt(&bias, "bias")?,
    );
    let os = slice_mut(&mut out, "out")?;
    args.run(|| matmul::dense_forward(xs, ws, bs, os, shape))
}

/// Backward pass of a dense layer: `grad_weight += grad_output.T @ x`,
/// `grad_bias += grad_output.sum(0)` (`=` with `accumulate=False`), `grad_input = grad_output @
/// weight`; any may be None.
#[pyfunction]
#[pyo3(signature = (x, weight, grad_output, grad_weight, grad_bias, grad_input, accumulate = true))]
#[allow(clippy::too_many_arguments)]
pub fn dense_backward(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    weight: &Bound<'_, PyAny>,
    grad_output: &Bound<'_, PyAny>,
    grad_weight: Option<&Bound<'_, PyAny>>,
    grad_bias: Option<&Bound<'_, PyAny>>,
    grad_input: Option<&Bound<'_, PyAny>>,
    accumulate: bool,
) -> Result<(), Error> {
    let grads = (grad_weight, grad_bias, grad_input, accumulate);
    dispatch_float!(x, "x", backward_typed(py, x, weight, grad_output, grads))
}

fn backward_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    grad_output: &Bound<'py, PyAny>,
    grads: (
        Option<&Bound<'py, PyAny>>,
        Option<&Bound<'py, PyAny>>,
        Option<&Bound<'py, PyAny>>,
        bool,
    ),
) -> Result<(), Error> {
    let (grad_weight, grad_bias, grad_input, accumulate) = grads;
    let mut args = Args::new(py, "dense_backward");
    let (x, weight) = (args.read::<T>(x, "x")?, args.read::<T>(weight, "weight")?);
    let shape = dense_shape(x.shape(), weight.shape())?;
    let (batch, n_in, n_out) = (shape.batch, shape.in_features, shape.out_features);
    let dy = args.read_shaped::<T>(grad_output, "grad_output", &[batch, n_out])?;
    let mut gw = args.write_opt::<T>(grad_weight, "grad_weight", &[n_out, n_in])?;
    let mut gb = args.write_opt::<T>(grad_bias, "grad_bias", &[n_out])?;
    let mut gx = args.write_opt::<T>(grad_input, "grad_input", &[batch, n_in])?;
    let grads = DenseGrads {
        weight: slice_mut_opt(&mut gw, "grad_weight")?,
        bias: slice_mut_opt(&mut gb, "grad_bias")?,
        input: slice_mut_opt(&mut gx, "grad_input")?,
        accumulate,
    };
    let (xs, ws, dys) = (
        slice(&x, "x")?,
        slice(&weight, "weight")?,
        slice(&dy, "grad_output")?,
    );
    args.run(|| matmul::dense_backward(xs, ws, dys, grads, shape))
}
