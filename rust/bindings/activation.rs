//! Bindings of the activation kernels.

use super::arrays::{check_shape, dispatch_float, read, slice, slice_mut, write};
use crate::error::Error;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::activation::{self, Activation};
use saddlepoint_kernels::Float;

/// The activation named `kind` ("relu", "leaky_relu", "sigmoid", "hard_sigmoid", "tanh",
/// "identity").
fn parse(kind: &str, negative_slope: f64) -> Result<Activation, Error> {
    Ok(match kind {
        "identity" => Activation::Identity,
        "relu" => Activation::Relu,
        "leaky_relu" => Activation::LeakyRelu { negative_slope },
        "sigmoid" => Activation::Sigmoid,
        "hard_sigmoid" => Activation::HardSigmoid,
        "tanh" => Activation::Tanh,
        other => {
            return Err(Error::Value(format!(
                "kind must be one of identity, relu, leaky_relu, sigmoid, hard_sigmoid, tanh; \
                 got {other:?}"
            )))
        }
    })
}

/// `out = f(x)` elementwise for the activation `kind`.
#[pyfunction]
#[pyo3(signature = (kind, x, out, negative_slope = 0.01))]
pub fn activation_forward(
    py: Python<'_>,
    kind: &str,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    negative_slope: f64,
) -> Result<(), Error> {
    let activation = parse(kind, negative_slope)?;
    dispatch_float!(x, "x", forward_typed(py, activation, x, out))
}

fn forward_typed<T: Float + Element>(
    py: Python<'_>,
    activation: Activation,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let x = read::<T>(x, "x")?;
    let mut out = write::<T>(out, "out")?;
    check_shape("out", out.shape(), x.shape())?;
    let (xs, os) = (slice(&x, "x")?, slice_mut(&mut out, "out")?);
    py.detach(|| activation::activation_forward(activation, xs, os))?;
    Ok(())
}

/// `grad_input = f'(x) * grad_output`, given the forward input `x` and its `output`.
#[pyfunction]
#[pyo3(signature = (kind, x, output, grad_output, grad_input, negative_slope = 0.01))]
pub fn activation_backward(
    py: Python<'_>,
    kind: &str,
    x: &Bound<'_, PyAny>,
    output: &Bound<'_, PyAny>,
    grad_output: &Bound<'_, PyAny>,
    grad_input: &Bound<'_, PyAny>,
    negative_slope: f64,
) -> Result<(), Error> {
    let activation = parse(kind, negative_slope)?;
    dispatch_float!(
        x,
        "x",
        backward_typed(py, activation, x, output, grad_output, grad_input)
    )
}

fn backward_typed<T: Float + Element>(
    py: Python<'_>,
    activation: Activation,
    x: &Bound<'_, PyAny>,
    output: &Bound<'_, PyAny>,
    grad_output: &Bound<'_, PyAny>,
    grad_input: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let (x, y) = (read::<T>(x, "x")?, read::<T>(output, "output")?);
    let dy = read::<T>(grad_output, "grad_output")?;
    let mut dx = write::<T>(grad_input, "grad_input")?;
    for (name, shape) in [
        ("output", y.shape()),
        ("grad_output", dy.shape()),
        ("grad_input", dx.shape()),
    ] {
        check_shape(name, shape, x.shape())?;
    }
    let (xs, ys, dys) = (
        slice(&x, "x")?,
        slice(&y, "output")?,
        slice(&dy, "grad_output")?,
    );
    let dxs = slice_mut(&mut dx, "grad_input")?;
    py.detach(|| activation::activation_backward(activation, xs, ys, dys, dxs))?;
    Ok(())
}
