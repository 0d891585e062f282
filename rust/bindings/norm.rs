//! Bindings of batch norm, layer norm and dropout.

use super::arrays::{check_shape, dispatch_float, read, shape_str, slice, slice_mut, write};
use crate::error::Error;
use numpy::{Element, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::norm::{self, BatchNormGrads, NormShape, RunningStats};
use saddlepoint_kernels::Float;

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

/// Optional per-channel arrays, borrowed and checked to have `len` elements.
fn read_vector<'py, T: Element>(
    obj: Option<&Bound<'py, PyAny>>,
    name: &str,
    len: usize,
) -> Result<Option<PyReadonlyArrayDyn<'py, T>>, Error> {
    let Some(obj) = obj else { return Ok(None) };
    let v = read::<T>(obj, name)?;
    check_shape(name, v.shape(), &[len])?;
    Ok(Some(v))
}

/// Each channel's batch mean and biased variance into `mean` and `var` (shape (channels,)).
#[pyfunction]
pub fn batch_norm_statistics(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    mean: &Bound<'_, PyAny>,
    var: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(x, "x", statistics_typed(py, x, mean, var))
}

fn statistics_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    mean: &Bound<'_, PyAny>,
    var: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let x = read::<T>(x, "x")?;
    let (mut mean, mut var) = (write::<T>(mean, "mean")?, write::<T>(var, "var")?);
    let shape = norm_shape(x.shape())?;
    check_shape("mean", mean.shape(), &[shape.channels])?;
    check_shape("var", var.shape(), &[shape.channels])?;
    let (xs, ms, vs) = (
        slice(&x, "x")?,
        slice_mut(&mut mean, "mean")?,
        slice_mut(&mut var, "var")?,
    );
    py.detach(|| norm::batch_norm_statistics(xs, shape, ms, vs))?;
    Ok(())
}

/// Training-mode batch norm forward: statistics, running-statistics update (when given, with
/// `r = (1 − factor)·r + factor·batch`), normalization; writes `out`, `save_mean`, `save_invstd`.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, eps, factor, running_mean, running_var, out, save_mean, save_invstd))]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_train(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
    factor: f64,
    running_mean: Option<&Bound<'_, PyAny>>,
    running_var: Option<&Bound<'_, PyAny>>,
    out: &Bound<'_, PyAny>,
    save_mean: &Bound<'_, PyAny>,
    save_invstd: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let running = (factor, running_mean, running_var);
    dispatch_float!(
        x,
        "x",
        train_typed(
            py,
            x,
            weight,
            bias,
            eps,
            running,
            (out, save_mean, save_invstd)
        )
    )
}

type Outputs<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
);

fn train_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
    running: (f64, Option<&Bound<'_, PyAny>>, Option<&Bound<'_, PyAny>>),
    outputs: Outputs<'_, '_>,
) -> Result<(), Error> {
    let x = read::<T>(x, "x")?;
    let shape = norm_shape(x.shape())?;
    let c = shape.channels;
    let (weight, bias) = (
        read_vector::<T>(weight, "weight", c)?,
        read_vector::<T>(bias, "bias", c)?,
    );
    let (factor, running_mean, running_var) = running;
    let mut rm = running_mean
        .map(|r| write::<T>(r, "running_mean"))
        .transpose()?;
    let mut rv = running_var
        .map(|r| write::<T>(r, "running_var"))
        .transpose()?;
    for (name, r) in [("running_mean", &rm), ("running_var", &rv)] {
        if let Some(r) = r {
            check_shape(name, r.shape(), &[c])?;
        }
    }
    let mut out = write::<T>(outputs.0, "out")?;
    let (mut mean, mut invstd) = (
        write::<T>(outputs.1, "save_mean")?,
        write::<T>(outputs.2, "save_invstd")?,
    );
    check_shape("out", out.shape(), x.shape())?;
    check_shape("save_mean", mean.shape(), &[c])?;
    check_shape("save_invstd", invstd.shape(), &[c])?;
    let xs = slice(&x, "x")?;
    let ws = weight.as_ref().map(|w| slice(w, "weight")).transpose()?;
    let bs = bias.as_ref().map(|b| slice(b, "bias")).transpose()?;
    let running = match (rm.as_mut(), rv.as_mut()) {
        (Some(m), Some(v)) => Some(RunningStats {
            mean: slice_mut(m, "running_mean")?,
            var: slice_mut(v, "running_var")?,
            factor,
        }),
        (None, None) => None,
        _ => {
            return Err(Error::Value(
                "running_mean and running_var must be given together".into(),
            ))
        }
    };
    let (os, ms, ss) = (
        slice_mut(&mut out, "out")?,
        slice_mut(&mut mean, "save_mean")?,
        slice_mut(&mut invstd, "save_invstd")?,
    );
    py.detach(|| norm::batch_norm_forward_train(xs, shape, ws, bs, eps, running, os, ms, ss))?;
    Ok(())
}

/// `out = (x − mean)·invstd·weight + bias` per channel; weight and bias may be None.
#[pyfunction]
pub fn batch_norm_normalize(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    mean: &Bound<'_, PyAny>,
    invstd: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(
        x,
        "x",
        normalize_typed(py, x, mean, invstd, weight, bias, out)
    )
}

fn normalize_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    mean: &Bound<'_, PyAny>,
    invstd: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    out: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let x = read::<T>(x, "x")?;
    let shape = norm_shape(x.shape())?;
    let c = shape.channels;
    let (mean, invstd) = (
        read_vector::<T>(Some(mean), "mean", c)?,
        read_vector::<T>(Some(invstd), "invstd", c)?,
    );
    let (weight, bias) = (
        read_vector::<T>(weight, "weight", c)?,
        read_vector::<T>(bias, "bias", c)?,
    );
    let mut out = write::<T>(out, "out")?;
    check_shape("out", out.shape(), x.shape())?;
    let xs = slice(&x, "x")?;
    let ms = mean
        .as_ref()
        .map(|m| slice(m, "mean"))
        .transpose()?
        .unwrap_or_default();
    let ss = invstd
        .as_ref()
        .map(|s| slice(s, "invstd"))
        .transpose()?
        .unwrap_or_default();
    let ws = weight.as_ref().map(|w| slice(w, "weight")).transpose()?;
    let bs = bias.as_ref().map(|b| slice(b, "bias")).transpose()?;
    let os = slice_mut(&mut out, "out")?;
    py.detach(|| norm::batch_norm_normalize(xs, shape, ms, ss, ws, bs, os))?;
    Ok(())
}

/// Backward pass of batch norm; `batch_stats` says whether the forward used batch statistics.
#[pyfunction]
#[pyo3(signature = (x, grad_output, mean, invstd, weight, batch_stats, grad_input, grad_weight, grad_bias))]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    grad_output: &Bound<'_, PyAny>,
    mean: &Bound<'_, PyAny>,
    invstd: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    batch_stats: bool,
    grad_input: Option<&Bound<'_, PyAny>>,
    grad_weight: Option<&Bound<'_, PyAny>>,
    grad_bias: Option<&Bound<'_, PyAny>>,
) -> Result<(), Error> {
    let args = (
        grad_output,
        mean,
        invstd,
        weight,
        batch_stats,
        grad_input,
        grad_weight,
        grad_bias,
    );
    dispatch_float!(x, "x", bn_backward_typed(py, x, args))
}

type BackwardArgs<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
    bool,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
);

fn bn_backward_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    args: BackwardArgs<'_, '_>,
) -> Result<(), Error> {
    let (grad_output, mean, invstd, weight, batch_stats, grad_input, grad_weight, grad_bias) = args;
    let x = read::<T>(x, "x")?;
    let shape = norm_shape(x.shape())?;
    let c = shape.channels;
    let dy = read::<T>(grad_output, "grad_output")?;
    check_shape("grad_output", dy.shape(), x.shape())?;
    let (mean, invstd) = (
        read_vector::<T>(Some(mean), "mean", c)?,
        read_vector::<T>(Some(invstd), "invstd", c)?,
    );
    let weight = read_vector::<T>(weight, "weight", c)?;
    let mut gx = grad_input
        .map(|g| write::<T>(g, "grad_input"))
        .transpose()?;
    let mut gw = grad_weight
        .map(|g| write::<T>(g, "grad_weight"))
        .transpose()?;
    let mut gb = grad_bias.map(|g| write::<T>(g, "grad_bias")).transpose()?;
    if let Some(g) = &gx {
        check_shape("grad_input", g.shape(), x.shape())?;
    }
    for (name, g) in [("grad_weight", &gw), ("grad_bias", &gb)] {
        if let Some(g) = g {
            check_shape(name, g.shape(), &[c])?;
        }
    }
    let (xs, dys) = (slice(&x, "x")?, slice(&dy, "grad_output")?);
    let ms = mean
        .as_ref()
        .map(|m| slice(m, "mean"))
        .transpose()?
        .unwrap_or_default();
    let ss = invstd
        .as_ref()
        .map(|s| slice(s, "invstd"))
        .transpose()?
        .unwrap_or_default();
    let ws = weight.as_ref().map(|w| slice(w, "weight")).transpose()?;
    let grads = BatchNormGrads {
        input: gx
            .as_mut()
            .map(|g| slice_mut(g, "grad_input"))
            .transpose()?,
        weight: gw
            .as_mut()
            .map(|g| slice_mut(g, "grad_weight"))
            .transpose()?,
        bias: gb.as_mut().map(|g| slice_mut(g, "grad_bias")).transpose()?,
    };
    py.detach(|| norm::batch_norm_backward(xs, dys, shape, ms, ss, ws, batch_stats, grads))?;
    Ok(())
}

/// Rows and features of layer-norm input whose trailing dimensions hold `features` values.
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

/// Layer norm over the last `features` values of each row; writes `out`, `mean`, `invstd`.
#[pyfunction]
#[pyo3(signature = (x, features, weight, bias, eps, out, mean, invstd))]
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_forward(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    features: usize,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
    out: &Bound<'_, PyAny>,
    mean: &Bound<'_, PyAny>,
    invstd: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(
        x,
        "x",
        ln_forward_typed(py, x, features, weight, bias, eps, (out, mean, invstd))
    )
}

fn ln_forward_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    features: usize,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
    outputs: (&Bound<'_, PyAny>, &Bound<'_, PyAny>, &Bound<'_, PyAny>),
) -> Result<(), Error> {
    let x = read::<T>(x, "x")?;
    let rows = layer_rows(x.shape(), features)?;
    let (weight, bias) = (
        read_vector::<T>(weight, "weight", features)?,
        read_vector::<T>(bias, "bias", features)?,
    );
    let mut out = write::<T>(outputs.0, "out")?;
    let (mut mean, mut invstd) = (
        write::<T>(outputs.1, "mean")?,
        write::<T>(outputs.2, "invstd")?,
    );
    check_shape("out", out.shape(), x.shape())?;
    check_shape("mean", mean.shape(), &[rows])?;
    check_shape("invstd", invstd.shape(), &[rows])?;
    let xs = slice(&x, "x")?;
    let ws = weight.as_ref().map(|w| slice(w, "weight")).transpose()?;
    let bs = bias.as_ref().map(|b| slice(b, "bias")).transpose()?;
    let (os, ms, ss) = (
        slice_mut(&mut out, "out")?,
        slice_mut(&mut mean, "mean")?,
        slice_mut(&mut invstd, "invstd")?,
    );
    py.detach(|| norm::layer_norm_forward(xs, features, ws, bs, eps, os, ms, ss))?;
    Ok(())
}

/// Layer norm backward: overwrites `grad_input`, accumulates `grad_weight`, `grad_bias`.
#[pyfunction]
#[pyo3(signature = (x, grad_output, features, mean, invstd, weight, grad_input, grad_weight, grad_bias))]
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    grad_output: &Bound<'_, PyAny>,
    features: usize,
    mean: &Bound<'_, PyAny>,
    invstd: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    grad_input: &Bound<'_, PyAny>,
    grad_weight: Option<&Bound<'_, PyAny>>,
    grad_bias: Option<&Bound<'_, PyAny>>,
) -> Result<(), Error> {
    let args = (
        grad_output,
        mean,
        invstd,
        weight,
        false,
        Some(grad_input),
        grad_weight,
        grad_bias,
    );
    dispatch_float!(x, "x", ln_backward_typed(py, x, features, args))
}

fn ln_backward_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    features: usize,
    args: BackwardArgs<'_, '_>,
) -> Result<(), Error> {
    let (grad_output, mean, invstd, weight, _, grad_input, grad_weight, grad_bias) = args;
    let x = read::<T>(x, "x")?;
    let rows = layer_rows(x.shape(), features)?;
    let dy = read::<T>(grad_output, "grad_output")?;
    check_shape("grad_output", dy.shape(), x.shape())?;
    let (mean, invstd) = (
        read_vector::<T>(Some(mean), "mean", rows)?,
        read_vector::<T>(Some(invstd), "invstd", rows)?,
    );
    let weight = read_vector::<T>(weight, "weight", features)?;
    let mut gx = grad_input
        .map(|g| write::<T>(g, "grad_input"))
        .transpose()?;
    let mut gw = grad_weight
        .map(|g| write::<T>(g, "grad_weight"))
        .transpose()?;
    let mut gb = grad_bias.map(|g| write::<T>(g, "grad_bias")).transpose()?;
    if let Some(g) = &gx {
        check_shape("grad_input", g.shape(), x.shape())?;
    }
    for (name, g) in [("grad_weight", &gw), ("grad_bias", &gb)] {
        if let Some(g) = g {
            check_shape(name, g.shape(), &[features])?;
        }
    }
    let (xs, dys) = (slice(&x, "x")?, slice(&dy, "grad_output")?);
    let ms = mean
        .as_ref()
        .map(|m| slice(m, "mean"))
        .transpose()?
        .unwrap_or_default();
    let ss = invstd
        .as_ref()
        .map(|s| slice(s, "invstd"))
        .transpose()?
        .unwrap_or_default();
    let ws = weight.as_ref().map(|w| slice(w, "weight")).transpose()?;
    let Some(gxs) = gx
        .as_mut()
        .map(|g| slice_mut(g, "grad_input"))
        .transpose()?
    else {
        return Err(Error::Value("grad_input is required".into()));
    };
    let gws = gw
        .as_mut()
        .map(|g| slice_mut(g, "grad_weight"))
        .transpose()?;
    let gbs = gb.as_mut().map(|g| slice_mut(g, "grad_bias")).transpose()?;
    py.detach(|| norm::layer_norm_backward(xs, dys, features, ms, ss, ws, gxs, gws, gbs))?;
    Ok(())
}

/// Inverted dropout with a mask drawn from `seed`: writes `out = x·mask` and `mask`.
#[pyfunction]
pub fn dropout_forward(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    p: f64,
    seed: u64,
    out: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    dispatch_float!(x, "x", dropout_typed(py, x, p, seed, out, mask))
}

fn dropout_typed<T: Float + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    p: f64,
    seed: u64,
    out: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
) -> Result<(), Error> {
    let x = read::<T>(x, "x")?;
    let (mut out, mut mask) = (write::<T>(out, "out")?, write::<T>(mask, "mask")?);
    check_shape("out", out.shape(), x.shape())?;
    check_shape("mask", mask.shape(), x.shape())?;
    let (xs, os, ms) = (
        slice(&x, "x")?,
        slice_mut(&mut out, "out")?,
        slice_mut(&mut mask, "mask")?,
    );
    py.detach(|| norm::dropout_forward(xs, p, seed, os, ms))?;
    Ok(())
}
