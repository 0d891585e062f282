//! Bindings of batch norm, layer norm and dropout.

use super::arrays::{with_float, Args, Arr, Borrow, In, OptArr, Out, ANY};
use super::scalars::{natural_u64, natural_usize, real};
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::norm::{self, layer_norm_rows, BatchNormGrads, NormShape, RunningStats};

/// Each channel's batch mean and biased variance into `mean` and `var` (shape (channels,)).
/// No channels: nothing to write; channels with no values (zero batch or length): ValueError.
#[pyfunction]
pub fn batch_norm_statistics(py: Python<'_>, x: Arr, mean: Arr, var: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_statistics");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let shape = NormShape::of(x.shape())?;
        let mut mean: Out<T> = a.arg(mean, "mean", &[shape.channels])?;
        let mut var: Out<T> = a.arg(var, "var", &[shape.channels])?;
        let (x, mean, var) = (&*x, &mut *mean, &mut *var);
        a.run(|| norm::batch_norm_statistics(x, shape, mean, var))
    })
}

/// Training-mode batch norm forward: statistics, running-statistics update (when given, with
/// `r = (1 − factor)·r + factor·batch`), normalization; writes `out`, `save_mean`, `save_invstd`.
/// Zero sizes as `batch_norm_statistics`; a rejected call writes nothing.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, eps, factor, running_mean, running_var, out, save_mean, save_invstd))]
pub fn batch_norm_forward_train(
    py: Python<'_>, x: Arr, weight: OptArr, bias: OptArr, #[pyo3(from_py_with = real)] eps: f64,
    #[pyo3(from_py_with = real)] factor: f64, running_mean: OptArr, running_var: OptArr, out: Arr,
    save_mean: Arr, save_invstd: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_forward_train");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let shape = NormShape::of(x.shape())?;
        let c = &[shape.channels];
        let weight: Option<In<T>> = a.opt(weight, "weight", c)?;
        let bias: Option<In<T>> = a.opt(bias, "bias", c)?;
        let mut rm: Option<Out<T>> = a.opt(running_mean, "running_mean", c)?;
        let mut rv: Option<Out<T>> = a.opt(running_var, "running_var", c)?;
        let mut out: Out<T> = a.arg(out, "out", x.shape())?;
        let mut mean: Out<T> = a.arg(save_mean, "save_mean", c)?;
        let mut invstd: Out<T> = a.arg(save_invstd, "save_invstd", c)?;
        let running = RunningStats::pair(rm.as_deref_mut(), rv.as_deref_mut(), factor)?;
        let (x, weight, bias, out) = (&*x, weight.as_deref(), bias.as_deref(), &mut *out);
        let (mean, invstd) = (&mut *mean, &mut *invstd);
        a.run(|| norm::batch_norm_forward_train(x, shape, weight, bias, eps, running, out, mean, invstd))
    })
}

/// `out = (x − mean)·invstd·weight + bias` per channel; weight and bias may be None. Zero sizes:
/// an empty `out`.
#[pyfunction]
pub fn batch_norm_normalize(
    py: Python<'_>, x: Arr, mean: Arr, invstd: Arr, weight: OptArr, bias: OptArr, out: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_normalize");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let shape = NormShape::of(x.shape())?;
        let c = &[shape.channels];
        let (mean, invstd): (In<T>, In<T>) = (a.arg(mean, "mean", c)?, a.arg(invstd, "invstd", c)?);
        let weight: Option<In<T>> = a.opt(weight, "weight", c)?;
        let bias: Option<In<T>> = a.opt(bias, "bias", c)?;
        let mut out: Out<T> = a.arg(out, "out", x.shape())?;
        let (x, mean, invstd, out) = (&*x, &*mean, &*invstd, &mut *out);
        let (weight, bias) = (weight.as_deref(), bias.as_deref());
        a.run(|| norm::batch_norm_normalize(x, shape, mean, invstd, weight, bias, out))
    })
}

/// Backward pass of batch norm; `batch_stats` says whether the forward used batch statistics.
/// Zero channels or no values per channel: `grad_weight`/`grad_bias` unchanged (sums of nothing).
#[pyfunction]
#[pyo3(signature = (x, grad_output, mean, invstd, weight, batch_stats, grad_input, grad_weight, grad_bias))]
pub fn batch_norm_backward(
    py: Python<'_>, x: Arr, grad_output: Arr, mean: Arr, invstd: Arr, weight: OptArr, batch_stats: bool,
    grad_input: OptArr, grad_weight: OptArr, grad_bias: OptArr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_backward");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let shape = NormShape::of(x.shape())?;
        let c = &[shape.channels];
        let dy: In<T> = a.arg(grad_output, "grad_output", x.shape())?;
        let (mean, invstd): (In<T>, In<T>) = (a.arg(mean, "mean", c)?, a.arg(invstd, "invstd", c)?);
        let w: Option<In<T>> = a.opt(weight, "weight", c)?;
        let mut gx: Option<Out<T>> = a.opt(grad_input, "grad_input", x.shape())?;
        let mut gw: Option<Out<T>> = a.opt(grad_weight, "grad_weight", c)?;
        let mut gb: Option<Out<T>> = a.opt(grad_bias, "grad_bias", c)?;
        let (input, weight, bias) = (gx.as_deref_mut(), gw.as_deref_mut(), gb.as_deref_mut());
        let (x, dy, mean, invstd, w) = (&*x, &*dy, &*mean, &*invstd, w.as_deref());
        let grads = BatchNormGrads { input, weight, bias };
        a.run(|| norm::batch_norm_backward(x, dy, shape, mean, invstd, w, batch_stats, grads))
    })
}

/// Layer norm over the last `features` values of each row; writes `out`, `mean`, `invstd`. Zero
/// rows: empty results; zero features: ValueError.
#[pyfunction]
#[pyo3(signature = (x, features, weight, bias, eps, out, mean, invstd))]
pub fn layer_norm_forward(
    py: Python<'_>, x: Arr, #[pyo3(from_py_with = natural_usize)] features: usize, weight: OptArr,
    bias: OptArr, #[pyo3(from_py_with = real)] eps: f64, out: Arr, mean: Arr, invstd: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "layer_norm_forward");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let (rows, f) = (&[layer_norm_rows(x.shape(), features)?], &[features]);
        let weight: Option<In<T>> = a.opt(weight, "weight", f)?;
        let bias: Option<In<T>> = a.opt(bias, "bias", f)?;
        let mut out: Out<T> = a.arg(out, "out", x.shape())?;
        let mut mean: Out<T> = a.arg(mean, "mean", rows)?;
        let mut invstd: Out<T> = a.arg(invstd, "invstd", rows)?;
        let (x, weight, bias, out) = (&*x, weight.as_deref(), bias.as_deref(), &mut *out);
        let (mean, invstd) = (&mut *mean, &mut *invstd);
        a.run(|| norm::layer_norm_forward(x, features, weight, bias, eps, out, mean, invstd))
    })
}

/// Layer norm backward: overwrites `grad_input`, accumulates `grad_weight`, `grad_bias`.
#[pyfunction]
#[pyo3(signature = (x, grad_output, features, mean, invstd, weight, grad_input, grad_weight, grad_bias))]
pub fn layer_norm_backward(
    py: Python<'_>, x: Arr, grad_output: Arr, #[pyo3(from_py_with = natural_usize)] features: usize,
    mean: Arr, invstd: Arr, weight: OptArr, grad_input: Arr, grad_weight: OptArr, grad_bias: OptArr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "layer_norm_backward");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let (rows, f) = (&[layer_norm_rows(x.shape(), features)?], &[features]);
        let dy: In<T> = a.arg(grad_output, "grad_output", x.shape())?;
        let (mean, invstd): (In<T>, In<T>) = (a.arg(mean, "mean", rows)?, a.arg(invstd, "invstd", rows)?);
        let w: Option<In<T>> = a.opt(weight, "weight", f)?;
        let mut gx: Out<T> = a.arg(grad_input, "grad_input", x.shape())?;
        let mut gw: Option<Out<T>> = a.opt(grad_weight, "grad_weight", f)?;
        let mut gb: Option<Out<T>> = a.opt(grad_bias, "grad_bias", f)?;
        let (x, dy, mean, invstd, w) = (&*x, &*dy, &*mean, &*invstd, w.as_deref());
        let (gx, gw, gb) = (&mut *gx, gw.as_deref_mut(), gb.as_deref_mut());
        a.run(|| norm::layer_norm_backward(x, dy, features, mean, invstd, w, gx, gw, gb))
    })
}

/// Inverted dropout with a mask drawn from `seed`: writes `out = x·mask` and `mask`.
#[pyfunction]
pub fn dropout_forward(
    py: Python<'_>, x: Arr, #[pyo3(from_py_with = real)] p: f64,
    #[pyo3(from_py_with = natural_u64)] seed: u64, out: Arr, mask: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "dropout_forward");
    with_float!(x, "x", |T| {
        let x: In<T> = a.arg(x, "x", ANY)?;
        let mut out: Out<T> = a.arg(out, "out", x.shape())?;
        let mut mask: Out<T> = a.arg(mask, "mask", x.shape())?;
        let (x, out, mask) = (&*x, &mut *out, &mut *mask);
        a.run(|| norm::dropout_forward(x, p, seed, out, mask))
    })
}
