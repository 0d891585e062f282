//! Bindings of the optimizer updates.

use super::arrays::{check_shape, dispatch_float, read, slice, slice_mut, write};
use crate::error::Error;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::{optim, Float};

/// Plain gradient descent in place: `param -= lr * grad`.
#[pyfunction]
#[pyo3(signature = (param, grad, lr))]
pub fn sgd_step(
    py: Python<'_>,
    param: &Bound<'_, PyAny>,
    grad: &Bound<'_, PyAny>,
    lr: f64,
) -> Result<(), Error> {
    dispatch_float!(param, "param", sgd_typed(py, param, grad, lr))
}

fn sgd_typed<T: Float + Element>(
    py: Python<'_>,
    param: &Bound<'_, PyAny>,
    grad: &Bound<'_, PyAny>,
    lr: f64,
) -> Result<(), Error> {
    let mut p = write::<T>(param, "param")?;
    let g = read::<T>(grad, "grad")?;
    check_shape("grad", g.shape(), p.shape())?;
    let (ps, gs) = (slice_mut(&mut p, "param")?, slice(&g, "grad")?);
    py.detach(|| optim::sgd_step(ps, gs, lr))?;
    Ok(())
}
