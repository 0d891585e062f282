//! Bindings of the activation kernels.

use super::arrays::{with_float, Args, Arr};
use super::scalars::real;
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::activation::{self, Activation};

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
    x: Arr,
    out: Arr,
    #[pyo3(from_py_with = real)] negative_slope: f64,
) -> Result<(), Error> {
    let f = parse(kind, negative_slope)?;
    let mut a = Args::new(py, "activation_forward");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let mut out = a.write_like::<T>(out, "out", x.shape())?;
        let (xs, os) = (&*x, &mut *out);
        a.run(|| activation::activation_forward(f, xs, os))
    })
}

/// `grad_input = f'(x) * grad_output`, given the forward input `x` and its `output`.
#[pyfunction]
#[pyo3(signature = (kind, x, output, grad_output, grad_input, negative_slope = 0.01))]
pub fn activation_backward(
    py: Python<'_>,
    kind: &str,
    x: Arr,
    output: Arr,
    grad_output: Arr,
    grad_input: Arr,
    #[pyo3(from_py_with = real)] negative_slope: f64,
) -> Result<(), Error> {
    let f = parse(kind, negative_slope)?;
    let mut a = Args::new(py, "activation_backward");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let y = a.read_like::<T>(output, "output", x.shape())?;
        let dy = a.read_like::<T>(grad_output, "grad_output", x.shape())?;
        let mut dx = a.write_like::<T>(grad_input, "grad_input", x.shape())?;
        let (xs, ys, dys, dxs) = (&*x, &*y, &*dy, &mut *dx);
        a.run(|| activation::activation_backward(f, xs, ys, dys, dxs))
    })
}
