//! Bindings of the losses and softmax helpers.

use super::arrays::{check_shape, dims, dtype_name, has_dtype, with_float, Args, Arr, OptArr};
use super::scalars::real;
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::loss::{self, CrossEntropyOptions};

/// Runs the elementwise loss `$kernel` on `input` and `target` of one shape, writing
/// `grad_input`; returns the loss.
macro_rules! elementwise_loss {
    ($py:expr, $function:literal, $kernel:path, $input:expr, $target:expr, $grad:expr) => {{
        let mut a = Args::new($py, $function);
        with_float!($input, "input", |T| {
            let x = a.read::<T>($input, "input")?;
            let t = a.read_like::<T>($target, "target", x.shape())?;
            let mut g = a.write_like::<T>($grad, "grad_input", x.shape())?;
            let (xs, ts, gs) = (&*x, &*t, &mut *g);
            a.run(|| $kernel(xs, ts, gs))
        })
    }};
}

/// Mean squared error; writes d(loss)/d(input) into `grad_input` and returns the loss. Every
/// mean loss of no elements (no rows or no classes for cross-entropy) is a ValueError.
#[pyfunction]
pub fn mse_loss(py: Python<'_>, input: Arr, target: Arr, grad_input: Arr) -> Result<f64, Error> {
    elementwise_loss!(py, "mse_loss", loss::mse_loss, input, target, grad_input)
}

/// Mean absolute error; writes d(loss)/d(input) into `grad_input` and returns the loss.
#[pyfunction]
pub fn l1_loss(py: Python<'_>, input: Arr, target: Arr, grad_input: Arr) -> Result<f64, Error> {
    elementwise_loss!(py, "l1_loss", loss::l1_loss, input, target, grad_input)
}

/// Binary cross-entropy on logits; writes d(loss)/d(input) into `grad_input`, returns the loss.
#[pyfunction]
pub fn binary_cross_entropy_with_logits(
    py: Python<'_>,
    input: Arr,
    target: Arr,
    grad_input: Arr,
) -> Result<f64, Error> {
    use loss::binary_cross_entropy_with_logits as bce;
    elementwise_loss!(
        py,
        "binary_cross_entropy_with_logits",
        bce,
        input,
        target,
        grad_input
    )
}

/// Softmax cross-entropy on logits `input` (N, C) against int64 labels (N,) or class
/// probabilities (N, C); writes d(loss)/d(input) into `grad_input` and returns the mean loss.
#[pyfunction]
#[pyo3(signature = (input, target, grad_input, weight = None, label_smoothing = 0.0))]
pub fn cross_entropy(
    py: Python<'_>,
    input: Arr,
    target: Arr,
    grad_input: Arr,
    weight: OptArr,
    #[pyo3(from_py_with = real)] label_smoothing: f64,
) -> Result<f64, Error> {
    let mut a = Args::new(py, "cross_entropy");
    with_float!(input, "input", |T| {
        let z = a.read::<T>(input, "input")?;
        let [rows, classes] = dims::<2>("input", z.shape())?;
        let weight = a.read_opt::<T>(weight, "weight", &[classes])?;
        let mut g = a.write_like::<T>(grad_input, "grad_input", z.shape())?;
        let class_weights = weight.as_deref();
        let options = CrossEntropyOptions {
            class_weights,
            label_smoothing,
        };
        let zs = &*z;
        if has_dtype::<i64>(target, "target")? {
            let labels = a.read_like::<i64>(target, "target", &[rows])?;
            let (ls, gs) = (&*labels, &mut *g);
            a.run(|| loss::cross_entropy_labels(zs, ls, classes, options, gs))
        } else if has_dtype::<T>(target, "target")? {
            let probs = a.read_like::<T>(target, "target", z.shape())?;
            let (ps, gs) = (&*probs, &mut *g);
            a.run(|| loss::cross_entropy_probabilities(zs, ps, classes, options, gs))
        } else {
            Err(Error::Type(format!(
                "target must be int64 class labels or class probabilities of input's dtype \
                 {}, got {}",
                dtype_name(input, "input")?,
                dtype_name(target, "target")?
            )))
        }
    })
}

fn softmax_any(py: Python<'_>, x: Arr, out: Arr, log: bool) -> Result<(), Error> {
    let mut a = Args::new(py, if log { "log_softmax" } else { "softmax" });
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let [_, cols] = dims::<2>("x", x.shape())?;
        let mut out = a.write_like::<T>(out, "out", x.shape())?;
        let (xs, os) = (&*x, &mut *out);
        a.run(|| loss::softmax(xs, cols, log, os))
    })
}

/// Row-wise softmax of a 2-D array into `out` (no rows or no columns: an empty `out`).
#[pyfunction]
pub fn softmax(py: Python<'_>, x: Arr, out: Arr) -> Result<(), Error> {
    softmax_any(py, x, out, false)
}

/// Row-wise log-softmax of a 2-D array into `out` (no rows or no columns: an empty `out`).
#[pyfunction]
pub fn log_softmax(py: Python<'_>, x: Arr, out: Arr) -> Result<(), Error> {
    softmax_any(py, x, out, true)
}

/// Writes the one-hot encoding of int64 `labels` (N,) into `out` (N, num_classes).
#[pyfunction]
pub fn one_hot(py: Python<'_>, labels: Arr, out: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "one_hot");
    with_float!(out, "out", |T| {
        let labels = a.read::<i64>(labels, "labels")?;
        let [rows] = dims::<1>("labels", labels.shape())?;
        let mut out = a.write::<T>(out, "out")?;
        let [_, classes] = dims::<2>("out", out.shape())?;
        check_shape("out", out.shape(), &[rows, classes])?;
        let (ls, os) = (&*labels, &mut *out);
        a.run(|| loss::one_hot(ls, classes, os))
    })
}
