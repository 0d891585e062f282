//! Bindings of batch norm, layer norm and dropout.

use super::arrays::{shape_str, with_float, Args, Arr, OptArr};
use super::scalars::{natural_u64, natural_usize, real};
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::norm::{self, BatchNormGrads, NormShape, RunningStats};

/// `(batch, channels)` or `(batch, channels, length)`.
fn norm_shape(x: &[usize]) -> Result<NormShape, Error> {
    match *x {
        [batch, channels] => Ok(NormShape {
            batch,
            channels,
            length: 1,
        }),
        [batch, channels, length] => Ok(NormShape {
            batch,
            channels,
            length,
        }),
        _ => Err(Error::Value(format!(
            "x must have shape (batch, channels) or (batch, channels, length), got {}",
            shape_str(x)
        ))),
    }
}

/// Rows of layer-norm input whose trailing dimensions hold `features` values.
fn layer_rows(x: &[usize], features: usize) -> Result<usize, Error> {
    let total: usize = x.iter().product();
    if features == 0 || total % features != 0 {
        return Err(Error::Value(format!(
            "x's trailing dimensions must hold {features} values (normalized_shape), got shape {}",
            shape_str(x)
        )));
    }
    Ok(total / features)
}

/// Each channel's batch mean and biased variance into `mean` and `var` (shape (channels,)).
/// No channels: nothing to write; channels with no values (zero batch or length): ValueError.
#[pyfunction]
pub fn batch_norm_statistics(py: Python<'_>, x: Arr, mean: Arr, var: Arr) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_statistics");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let shape = norm_shape(x.shape())?;
        let c = [shape.channels];
        let mut mean = a.write_like::<T>(mean, "mean", &c)?;
        let mut var = a.write_like::<T>(var, "var", &c)?;
        let (xs, ms, vs) = (&*x, &mut *mean, &mut *var);
        a.run(|| norm::batch_norm_statistics(xs, shape, ms, vs))
    })
}

/// Training-mode batch norm forward: statistics, running-statistics update (when given, with
/// `r = (1 − factor)·r + factor·batch`), normalization; writes `out`, `save_mean`, `save_invstd`.
/// Zero sizes as `batch_norm_statistics`; a rejected call writes nothing.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, eps, factor, running_mean, running_var, out, save_mean, save_invstd))]
pub fn batch_norm_forward_train(
    py: Python<'_>,
    x: Arr,
    weight: OptArr,
    bias: OptArr,
    #[pyo3(from_py_with = real)] eps: f64,
    #[pyo3(from_py_with = real)] factor: f64,
    running_mean: OptArr,
    running_var: OptArr,
    out: Arr,
    save_mean: Arr,
    save_invstd: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_forward_train");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let shape = norm_shape(x.shape())?;
        let c = [shape.channels];
        let weight = a.read_opt::<T>(weight, "weight", &c)?;
        let bias = a.read_opt::<T>(bias, "bias", &c)?;
        let mut rm = a.write_opt::<T>(running_mean, "running_mean", &c)?;
        let mut rv = a.write_opt::<T>(running_var, "running_var", &c)?;
        let mut out = a.write_like::<T>(out, "out", x.shape())?;
        let mut mean = a.write_like::<T>(save_mean, "save_mean", &c)?;
        let mut invstd = a.write_like::<T>(save_invstd, "save_invstd", &c)?;
        let running = match (rm.as_deref_mut(), rv.as_deref_mut()) {
            (Some(mean), Some(var)) => Some(RunningStats { mean, var, factor }),
            (None, None) => None,
            _ => {
                let message = "running_mean and running_var must be given together";
                return Err(Error::Value(message.into()));
            }
        };
        let (xs, ws, bs, os) = (&*x, weight.as_deref(), bias.as_deref(), &mut *out);
        let (ms, ss) = (&mut *mean, &mut *invstd);
        a.run(|| norm::batch_norm_forward_train(xs, shape, ws, bs, eps, running, os, ms, ss))
    })
}

/// `out = (x − mean)·invstd·weight + bias` per channel; weight and bias may be None. Zero sizes:
/// an empty `out`.
#[pyfunction]
pub fn batch_norm_normalize(
    py: Python<'_>,
    x: Arr,
    mean: Arr,
    invstd: Arr,
    weight: OptArr,
    bias: OptArr,
    out: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_normalize");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let shape = norm_shape(x.shape())?;
        let c = [shape.channels];
        let mean = a.read_like::<T>(mean, "mean", &c)?;
        let invstd = a.read_like::<T>(invstd, "invstd", &c)?;
        let weight = a.read_opt::<T>(weight, "weight", &c)?;
        let bias = a.read_opt::<T>(bias, "bias", &c)?;
        let mut out = a.write_like::<T>(out, "out", x.shape())?;
        let (xs, ms, ss) = (&*x, &*mean, &*invstd);
        let (ws, bs, os) = (weight.as_deref(), bias.as_deref(), &mut *out);
        a.run(|| norm::batch_norm_normalize(xs, shape, ms, ss, ws, bs, os))
    })
}

/// Backward pass of batch norm; `batch_stats` says whether the forward used batch statistics.
/// Zero channels or no values per channel: `grad_weight`/`grad_bias` unchanged (sums of nothing).
#[pyfunction]
#[pyo3(signature = (x, grad_output, mean, invstd, weight, batch_stats, grad_input, grad_weight, grad_bias))]
pub fn batch_norm_backward(
    py: Python<'_>,
    x: Arr,
    grad_output: Arr,
    mean: Arr,
    invstd: Arr,
    weight: OptArr,
    batch_stats: bool,
    grad_input: OptArr,
    grad_weight: OptArr,
    grad_bias: OptArr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "batch_norm_backward");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let shape = norm_shape(x.shape())?;
        let c = [shape.channels];
        let dy = a.read_like::<T>(grad_output, "grad_output", x.shape())?;
        let mean = a.read_like::<T>(mean, "mean", &c)?;
        let invstd = a.read_like::<T>(invstd, "invstd", &c)?;
        let weight = a.read_opt::<T>(weight, "weight", &c)?;
        let mut gx = a.write_opt::<T>(grad_input, "grad_input", x.shape())?;
        let mut gw = a.write_opt::<T>(grad_weight, "grad_weight", &c)?;
        let mut gb = a.write_opt::<T>(grad_bias, "grad_bias", &c)?;
        let (xs, dys, ms, ss, ws) = (&*x, &*dy, &*mean, &*invstd, weight.as_deref());
        let (input, weight, bias) = (gx.as_deref_mut(), gw.as_deref_mut(), gb.as_deref_mut());
        let grads = BatchNormGrads {
            input,
            weight,
            bias,
        };
        a.run(|| norm::batch_norm_backward(xs, dys, shape, ms, ss, ws, batch_stats, grads))
    })
}

/// Layer norm over the last `features` values of each row; writes `out`, `mean`, `invstd`. Zero
/// rows: empty results; zero features: ValueError.
#[pyfunction]
#[pyo3(signature = (x, features, weight, bias, eps, out, mean, invstd))]
pub fn layer_norm_forward(
    py: Python<'_>,
    x: Arr,
    #[pyo3(from_py_with = natural_usize)] features: usize,
    weight: OptArr,
    bias: OptArr,
    #[pyo3(from_py_with = real)] eps: f64,
    out: Arr,
    mean: Arr,
    invstd: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "layer_norm_forward");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let rows = [layer_rows(x.shape(), features)?];
        let weight = a.read_opt::<T>(weight, "weight", &[features])?;
        let bias = a.read_opt::<T>(bias, "bias", &[features])?;
        let mut out = a.write_like::<T>(out, "out", x.shape())?;
        let mut mean = a.write_like::<T>(mean, "mean", &rows)?;
        let mut invstd = a.write_like::<T>(invstd, "invstd", &rows)?;
        let (xs, ws, bs, os) = (&*x, weight.as_deref(), bias.as_deref(), &mut *out);
        let (ms, ss) = (&mut *mean, &mut *invstd);
        a.run(|| norm::layer_norm_forward(xs, features, ws, bs, eps, os, ms, ss))
    })
}

/// Layer norm backward: overwrites `grad_input`, accumulates `grad_weight`, `grad_bias`.
#[pyfunction]
#[pyo3(signature = (x, grad_output, features, mean, invstd, weight, grad_input, grad_weight, grad_bias))]
pub fn layer_norm_backward(
    py: Python<'_>,
    x: Arr,
    grad_output: Arr,
    #[pyo3(from_py_with = natural_usize)] features: usize,
    mean: Arr,
    invstd: Arr,
    weight: OptArr,
    grad_input: Arr,
    grad_weight: OptArr,
    grad_bias: OptArr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "layer_norm_backward");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let rows = [layer_rows(x.shape(), features)?];
        let dy = a.read_like::<T>(grad_output, "grad_output", x.shape())?;
        let mean = a.read_like::<T>(mean, "mean", &rows)?;
        let invstd = a.read_like::<T>(invstd, "invstd", &rows)?;
        let weight = a.read_opt::<T>(weight, "weight", &[features])?;
        let mut gx = a.write_like::<T>(grad_input, "grad_input", x.shape())?;
        let mut gw = a.write_opt::<T>(grad_weight, "grad_weight", &[features])?;
        let mut gb = a.write_opt::<T>(grad_bias, "grad_bias", &[features])?;
        let (xs, dys, ms, ss, ws) = (&*x, &*dy, &*mean, &*invstd, weight.as_deref());
        let (gxs, gws, gbs) = (&mut *gx, gw.as_deref_mut(), gb.as_deref_mut());
        a.run(|| norm::layer_norm_backward(xs, dys, features, ms, ss, ws, gxs, gws, gbs))
    })
}

/// Inverted dropout with a mask drawn from `seed`: writes `out = x·mask` and `mask`.
#[pyfunction]
pub fn dropout_forward(
    py: Python<'_>,
    x: Arr,
    #[pyo3(from_py_with = real)] p: f64,
    #[pyo3(from_py_with = natural_u64)] seed: u64,
    out: Arr,
    mask: Arr,
) -> Result<(), Error> {
    let mut a = Args::new(py, "dropout_forward");
    with_float!(x, "x", |T| {
        let x = a.read::<T>(x, "x")?;
        let mut out = a.write_like::<T>(out, "out", x.shape())?;
        let mut mask = a.write_like::<T>(mask, "mask", x.shape())?;
        let (xs, os, ms) = (&*x, &mut *out, &mut *mask);
        a.run(|| norm::dropout_forward(xs, p, seed, os, ms))
    })
}
