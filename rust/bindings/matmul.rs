//! Bindings of the dense layer kernels.

use super::arrays::{check_shape, dims, dispatch_float, read, slice, slice_mut, write};
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

fn forward_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    weight: &Bound<'_, PyAny>,
    bias: Option<&Bound<'_, PyAny>>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let (x, weight) = (read::<T>(x, "x")?, read::<T>(weight, "weight")?);
    let bias = bias.map(|b| read::<T>(b, "bias")).transpose()?;
    let mut out = write::<T>(out, "out")?;
    let shape = dense_shape(x.shape(), weight.shape())?;
    if let Some(b) = &bias {
        check_shape("bias", b.shape(), &[shape.out_features])?;
    }
    check_shape("out", out.shape(), &[shape.batch, shape.out_features])?;
    let (xs, ws) = (slice(&x, "x")?, slice(&weight, "weight")?);
    let bs = bias.as_ref().map(|b| slice(b, "bias")).transpose()?;
    let os = slice_mut(&mut out, "out")?;
    py.detach(|| matmul::dense_forward(xs, ws, bs, os, shape))?;
    Ok(())
}

/// Backward pass of a dense layer: `grad_weight += grad_output.T @ x`,
/// `grad_bias += grad_output.sum(0)`, `grad_input = grad_output @ weight`; any may be None.
#[pyfunction]
#[pyo3(signature = (x, weight, grad_output, grad_weight, grad_bias, grad_input))]
pub fn dense_backward(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    weight: &Bound<'_, PyAny>,
    grad_output: &Bound<'_, PyAny>,
    grad_weight: Option<&Bound<'_, PyAny>>,
    grad_bias: Option<&Bound<'_, PyAny>>,
    grad_input: Option<&Bound<'_, PyAny>>,
) -> Result<(), Error> {
    dispatch_float!(
        x,
        "x",
        backward_typed(
            py,
            x,
            weight,
            grad_output,
            grad_weight,
            grad_bias,
            grad_input
        )
    )
}

fn backward_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    weight: &Bound<'_, PyAny>,
    grad_output: &Bound<'_, PyAny>,
    grad_weight: Option<&Bound<'_, PyAny>>,
    grad_bias: Option<&Bound<'_, PyAny>>,
    grad_input: Option<&Bound<'_, PyAny>>,
) -> Result<(), Error> {
    let (x, weight) = (read::<T>(x, "x")?, read::<T>(weight, "weight")?);
    let grad_output = read::<T>(grad_output, "grad_output")?;
    let mut gw = grad_weight
        .map(|g| write::<T>(g, "grad_weight"))
        .transpose()?;
    let mut gb = grad_bias.map(|g| write::<T>(g, "grad_bias")).transpose()?;
    let mut gx = grad_input
        .map(|g| write::<T>(g, "grad_input"))
        .transpose()?;
    let shape = dense_shape(x.shape(), weight.shape())?;
    let (batch, n_in, n_out) = (shape.batch, shape.in_features, shape.out_features);
    check_shape("grad_output", grad_output.shape(), &[batch, n_out])?;
    if let Some(g) = &gw {
        check_shape("grad_weight", g.shape(), &[n_out, n_in])?;
    }
    if let Some(g) = &gb {
        check_shape("grad_bias", g.shape(), &[n_out])?;
    }
    if let Some(g) = &gx {
        check_shape("grad_input", g.shape(), &[batch, n_in])?;
    }
    let grads = DenseGrads {
        weight: gw
            .as_mut()
            .map(|g| slice_mut(g, "grad_weight"))
            .transpose()?,
        bias: gb.as_mut().map(|g| slice_mut(g, "grad_bias")).transpose()?,
        input: gx
            .as_mut()
            .map(|g| slice_mut(g, "grad_input"))
            .transpose()?,
    };
    let (xs, ws, dys) = (
        slice(&x, "x")?,
        slice(&weight, "weight")?,
        slice(&grad_output, "grad_output")?,
    );
    py.detach(|| matmul::dense_backward(xs, ws, dys, grads, shape))?;
    Ok(())
}
