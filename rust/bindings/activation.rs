//! Bindings of the activation kernels.

use super::arrays::{dispatch_float, slice, slice_mut, Args};
use super::scalars;
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
    #[pyo3(from_py_with = scalars::real)] negative_slope: f64,
) -> Result<(), Error> {
    let activation = parse(kind, negative_slope)?;
    dispatch_float!(x, "x", forward_typed(py, activation, x, out))
}

fn forward_typed<'py, T: Float + Element>(
    py: Python<'py>,
    activation: Activation,
    x: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "activation_forward");
    let x = args.read::<T>(x, "x")?;
    let mut out = args.write_shaped::<T>(out, "out", x.shape())?;
    let (xs, os) = (slice(&x, "x")?, slice_mut(&mut out, "out")?);
    args.run(|| activation::activation_forward(activation, xs, os))
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
    #[pyo3(from_py_with = scalars::real)] negative_slope: f64,
) -> Result<(), Error> {
    let activation = parse(kind, negative_slope)?;
    dispatch_float!(
        x,
        "x",
        backward_typed(py, activation, x, output, grad_output, grad_input)
    )
}

fn backward_typed<'py, T: Float + Element>(
    py: Python<'py>,
    activation: Activation,
    x: &Bound<'py, PyAny>,
    output: &Bound<'py, PyAny>,
    grad_output: &Bound<'py, PyAny>,
    grad_input: &Bound<'py, PyAny>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "activation_backward");
    let x = args.read::<T>(x, "x")?;
    let y = args.read_shaped::<T>(output, "output", x.shape())?;
    let dy = args.read_shaped::<T>(grad_output, "grad_output", x.shape())?;
    let mut dx = args.write_shaped::<T>(grad_input, "grad_input", x.shape())?;
    let (xs, ys, dys) = (
        slice(&x, "x")?,
        slice(&y, "output")?,
        slice(&dy, "grad_output")?,
    );
    let dxs = slice_mut(&mut dx, "grad_input")?;
    args.run(|| activation::activation_backward(activation, xs, ys, dys, dxs))
}
