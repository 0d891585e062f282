//! Bindings of the losses and softmax helpers.

use super::arrays::{
    check_shape, dtype_name, has_dtype, with_float, Args, Arr, Borrow, In, OptArr, Out, ANY,
};
use super::scalars::real;
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::error::dims;
use saddlepoint_kernels::loss::{self, CrossEntropyOptions};

/// Runs the elementwise loss `$kernel` on `input` and `target` of one shape, writing
/// `grad_input`; returns the loss.
macro_rules! elementwise_loss {
    ($py:expr, $function:literal, $kernel:path, $input:expr, $target:expr, $grad:expr) => {{
        let mut a = Args::new($py, $function);
        with_float!($input, "input", |T| {
            let x: In<T> = a.arg($input, "input", ANY)?;
            let t: In<T> = a.arg($target, "target", x.shape())?;
            let mut g: Out<T> = a.arg($grad, "grad_input", x.shape())?;
            let (x, t, g) = (&*x, &*t, &mut *g);
            a.run(|| $kernel(x, t, g))
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
    py: Python<'_>, input: Arr, target: Arr, grad_input: Arr,
) -> Result<f64, Error> {
    use loss::binary_cross_entropy_with_logits as bce;
    elementwise_loss!(py, "binary_cross_entropy_with_logits", bce, input, target, grad_input)
}

/// Softmax cross-entropy on logits `input` (N, C) against int64 labels (N,) or class
/// probabilities (N, C); writes d(loss)/d(input) into `grad_input` and returns the mean loss.
#[pyfunction]
#[pyo3(signature = (input, target, grad_input, weight = None, label_smoothing = 0.0))]
pub fn cross_entropy(
    py: Python<'_>, input: Arr, target: Arr, grad_input: Arr, weight: OptArr,
    #[pyo3(from_py_with = real)] label_smoothing: f64,
) -> Result<f64, Error> {
    let mut a = Args::new(py, "cross_entropy");
    with_float!(input, "input", |T| {
        let z: In<T> = a.arg(input, "input", ANY)?;
        let [rows, classes] = dims::<2>("input", z.shape())?;
        let weight: Option<In<T>> = a.opt(weight, "weight", &[classes])?;
        let mut g: Out<T> = a.arg(grad_input, "grad_input", z.shape())?;
        let options = CrossEntropyOptions { class_weights: weight.as_deref(), label_smoothing };
        let (z, g) = (&*z, &mut *g);
        if has_dtype::<i64>(target, "target")? {
            let labels = &*a.arg::<In<i64>>(target, "target", &[rows])?;
            a.run(|| loss::cross_entropy_labels(z, labels, classes, options, g))
        } else if has_dtype::<T>(target, "target")? {
            let probs = &*a.arg::<In<T>>(target, "target", &[rows, classes])?;
            a.run(|| loss::cross_entropy_probabilities(z, probs, classes, options, g))
        } else {
            let (input, target) = (dtype_name(input, "input")?, dtype_name(target, "target")?);
            Err(Error::Type(format!(
                "target must be int64 class labels or class probabilities of input's dtype {input}, got {target}"
            )))
        }
    })
}

fn softmax_any(py: Python<'_>, x: Arr, out: Arr, log: bool) -> Result<(), Error> {
    let mut a = Args::new(py, if log { "log_softmax" } else { "softmax" });
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let [_, cols] = dims::<2>("x", x.shape())?;
        let mut out: Out<T> = a.arg(out, "out", x.shape())?;
        let (x, out) = (&*x, &mut *out);
        a.run(|| loss::softmax(x, cols, log, out))
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
        let labels: In<i64> = a.arg(labels, "labels", ANY)?;
        let [rows] = dims::<1>("labels", labels.shape())?;
        let mut out: Out<T> = a.arg(out, "out", ANY)?;
        let [_, classes] = dims::<2>("out", out.shape())?;
        check_shape("out", out.shape(), &[rows, classes])?;
        let (labels, out) = (&*labels, &mut *out);
        a.run(|| loss::one_hot(labels, classes, out))
    })
}
