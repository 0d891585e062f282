//! Bindings of the activation kernels.

use super::arrays::{with_float, Args, Arr, Borrow, In, Out, ANY};
use super::scalars::real;
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::activation::{self, Activation};

/// `out = f(x)` elementwise for the activation `kind` ("identity", "relu", "leaky_relu",
/// "sigmoid", "hard_sigmoid", "tanh", or "exp": the kernels' vectorized exponential).
#[pyfunction]
#[pyo3(signature = (kind, x, out, negative_slope = 0.01))]
pub fn activation_forward(
    py: Python<'_>, kind: &str, x: Arr, out: Arr, #[pyo3(from_py_with = real)] negative_slope: f64,
) -> Result<(), Error> {
    let (f, mut a) = (Activation::parse(kind, negative_slope)?, Args::new(py, "activation_forward"));
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let mut out: Out<T> = a.arg(out, "out", x.shape())?;
        let (x, out) = (&*x, &mut *out);
        a.run(|| activation::activation_forward(f, x, out))
    })
}

/// `grad_input = f'(x) * grad_output`, given the forward input `x` and its `output`.
#[pyfunction]
#[pyo3(signature = (kind, x, output, grad_output, grad_input, negative_slope = 0.01))]
pub fn activation_backward(
    py: Python<'_>, kind: &str, x: Arr, output: Arr, grad_output: Arr, grad_input: Arr,
    #[pyo3(from_py_with = real)] negative_slope: f64,
) -> Result<(), Error> {
    let (f, mut a) = (Activation::parse(kind, negative_slope)?, Args::new(py, "activation_backward"));
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let y: In<T> = a.arg(output, "output", x.shape())?;
        let dy: In<T> = a.arg(grad_output, "grad_output", x.shape())?;
        let mut dx: Out<T> = a.arg(grad_input, "grad_input", x.shape())?;
        let (x, y, dy, dx) = (&*x, &*y, &*dy, &mut *dx);
        a.run(|| activation::activation_backward(f, x, y, dy, dx))
    })
}
