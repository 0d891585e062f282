//! Bindings of the losses and softmax helpers.

use super::arrays::{
    check_shape, dims, dispatch_float, dtype_name, has_dtype, slice, slice_mut, slice_opt, Args,
    FloatDtype,
};
use super::scalars;
use crate::error::Error;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::loss::{self, CrossEntropyOptions};
use saddlepoint_kernels::{Float, KernelError};

type ElementwiseLoss<T> = fn(&[T], &[T], &mut [T]) -> Result<f64, KernelError>;

/// Runs an elementwise loss on `input` and `target` of one shape, writing `grad_input`.
fn elementwise<'py, T: Float + Element>(
    py: Python<'py>,
    function: &'static str,
    kernel: ElementwiseLoss<T>,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    grad_input: &Bound<'py, PyAny>,
) -> Result<f64, Error> {
    let mut args = Args::new(py, function);
    let x = args.read::<T>(input, "input")?;
    let t = args.read_shaped::<T>(target, "target", x.shape())?;
    let mut g = args.write_shaped::<T>(grad_input, "grad_input", x.shape())?;
    let (xs, ts, gs) = (
        slice(&x, "input")?,
        slice(&t, "target")?,
        slice_mut(&mut g, "grad_input")?,
    );
    args.run(|| kernel(xs, ts, gs))
}

/// Runs the f32 or f64 instance of an elementwise loss, by `input`'s dtype.
fn elementwise_any(
    py: Python<'_>,
    function: &'static str,
    kernels: (ElementwiseLoss<f32>, ElementwiseLoss<f64>),
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    grad_input: &Bound<'_, PyAny>,
) -> Result<f64, Error> {
    match super::arrays::float_dtype(input, "input")? {
        FloatDtype::F32 => elementwise::<f32>(py, function, kernels.0, input, target, grad_input),
        FloatDtype::F64 => elementwise::<f64>(py, function, kernels.1, input, target, grad_input),
    }
}

/// Mean squared error; writes d(loss)/d(input) into `grad_input` and returns the loss. Every
/// mean loss of no elements (no rows or no classes for cross-entropy) is a ValueError.
#[pyfunction]
pub fn mse_loss(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    grad_input: &Bound<'_, PyAny>,
) -> Result<f64, Error> {
    let kernels = (
        loss::mse_loss as ElementwiseLoss<f32>,
        loss::mse_loss as ElementwiseLoss<f64>,
    );
    elementwise_any(py, "mse_loss", kernels, input, target, grad_input)
}

/// Mean absolute error; writes d(loss)/d(input) into `grad_input` and returns the loss.
#[pyfunction]
pub fn l1_loss(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    grad_input: &Bound<'_, PyAny>,
) -> Result<f64, Error> {
    let kernels = (
        loss::l1_loss as ElementwiseLoss<f32>,
        loss::l1_loss as ElementwiseLoss<f64>,
    );
    elementwise_any(py, "l1_loss", kernels, input, target, grad_input)
}

/// Binary cross-entropy on logits; writes d(loss)/d(input) into `grad_input`, returns the loss.
#[pyfunction]
pub fn binary_cross_entropy_with_logits(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    grad_input: &Bound<'_, PyAny>,
) -> Result<f64, Error> {
    let kernels = (
        loss::binary_cross_entropy_with_logits as ElementwiseLoss<f32>,
        loss::binary_cross_entropy_with_logits as ElementwiseLoss<f64>,
    );
    elementwise_any(
        py,
        "binary_cross_entropy_with_logits",
        kernels,
        input,
        target,
        grad_input,
    )
}

/// Softmax cross-entropy on logits `input` (N, C) against int64 labels (N,) or class
/// probabilities (N, C); writes d(loss)/d(input) into `grad_input` and returns the mean loss.
#[pyfunction]
#[pyo3(signature = (input, target, grad_input, weight = None, label_smoothing = 0.0))]
pub fn cross_entropy(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    grad_input: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = scalars::real)] label_smoothing: f64,
) -> Result<f64, Error> {
    dispatch_float!(
        input,
        "input",
        cross_entropy_typed(py, input, target, grad_input, weight, label_smoothing)
    )
}

fn cross_entropy_typed<'py, T: Float + Element>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    grad_input: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    label_smoothing: f64,
) -> Result<f64, Error> {
    let mut args = Args::new(py, "cross_entropy");
    let z = args.read::<T>(input, "input")?;
    let [rows, classes] = dims::<2>("input", z.shape())?;
    let weight = args.read_opt::<T>(weight, "weight", &[classes])?;
    let mut g = args.write_shaped::<T>(grad_input, "grad_input", z.shape())?;
    let class_weights = slice_opt(&weight, "weight")?;
    let options = CrossEntropyOptions {
        class_weights,
        label_smoothing,
    };
    let zs = slice(&z, "input")?;
    if has_dtype::<i64>(target, "target")? {
        let labels = args.read_shaped::<i64>(target, "target", &[rows])?;
        let (ls, gs) = (slice(&labels, "target")?, slice_mut(&mut g, "grad_input")?);
        args.run(|| loss::cross_entropy_labels(zs, ls, classes, options, gs))
    } else if has_dtype::<T>(target, "target")? {
        let probs = args.read_shaped::<T>(target, "target", z.shape())?;
        let (ps, gs) = (slice(&probs, "target")?, slice_mut(&mut g, "grad_input")?);
        args.run(|| loss::cross_entropy_probabilities(zs, ps, classes, options, gs))
    } else {
        Err(Error::Type(format!(
            "target must be int64 class labels or class probabilities of input's dtype \
             {}, got {}",
            dtype_name(input, "input")?,
            dtype_name(target, "target")?
        )))
    }
}

fn softmax_any(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    log: bool,
) -> Result<(), Error> {
    dispatch_float!(x, "x", softmax_typed(py, x, out, log))
}

fn softmax_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    log: bool,
) -> Result<(), Error> {
    let mut args = Args::new(py, if log { "log_softmax" } else { "softmax" });
    let x = args.read::<T>(x, "x")?;
    let [_, cols] = dims::<2>("x", x.shape())?;
    let mut out = args.write_shaped::<T>(out, "out", x.shape())?;
    let (xs, os) = (slice(&x, "x")?, slice_mut(&mut out, "out")?);
    args.run(|| loss::softmax(xs, cols, log, os))
}

/// Row-wise softmax of a 2-D array into `out` (no rows or no columns: an empty `out`).
#[pyfunction]
pub fn softmax(py: Python<'_>, x: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>) -> Result<(), Error> {
    softmax_any(py, x, out, false)
}

/// Row-wise log-softmax of a 2-D array into `out` (no rows or no columns: an empty `out`).
#[pyfunction]
pub fn log_softmax(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    softmax_any(py, x, out, true)
}

/// Writes the one-hot encoding of int64 `labels` (N,) into `out` (N, num_classes).
#[pyfunction]
pub fn one_hot(
    py: Python<'_>,
    labels: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(out, "out", one_hot_typed(py, labels, out))
}

fn one_hot_typed<'py, T: Float + Element>(
    py: Python<'py>,
    labels: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "one_hot");
    let labels = args.read::<i64>(labels, "labels")?;
    let [rows] = dims::<1>("labels", labels.shape())?;
    let mut out = args.write::<T>(out, "out")?;
    let [_, classes] = dims::<2>("out", out.shape())?;
    check_shape("out", out.shape(), &[rows, classes])?;
    let (ls, os) = (slice(&labels, "labels")?, slice_mut(&mut out, "out")?);
    args.run(|| loss::one_hot(ls, classes, os))
}
