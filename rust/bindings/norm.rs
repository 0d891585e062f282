//! Bindings of batch norm, layer norm and dropout.

use super::arrays::{dispatch_float, shape_str, slice, slice_mut, slice_mut_opt, slice_opt, Args};
use super::scalars;
use crate::error::Error;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::norm::{self, BatchNormGrads, NormShape, RunningStats};
use saddlepoint_kernels::Float;

type Arg<'a, 'py> = &'a Bound<'py, PyAny>;
type OptArg<'a, 'py> = Option<&'a Bound<'py, PyAny>>;

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

/// Each channel's batch mean and biased variance into `mean` and `var` (shape (channels,)).
/// No channels: nothing to write; channels with no values (zero batch or length): ValueError.
#[pyfunction]
pub fn batch_norm_statistics(py: Python<'_>, x: Arg, mean: Arg, var: Arg) -> Result<(), Error> {
    dispatch_float!(x, "x", statistics_typed(py, x, mean, var))
}

fn statistics_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: Arg<'_, 'py>,
    mean: Arg<'_, 'py>,
    var: Arg<'_, 'py>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "batch_norm_statistics");
    let x = args.read::<T>(x, "x")?;
    let shape = norm_shape(x.shape())?;
    let c = [shape.channels];
    let mut mean = args.write_shaped::<T>(mean, "mean", &c)?;
    let mut var = args.write_shaped::<T>(var, "var", &c)?;
    let (xs, ms, vs) = (
        slice(&x, "x")?,
        slice_mut(&mut mean, "mean")?,
        slice_mut(&mut var, "var")?,
    );
    args.run(|| norm::batch_norm_statistics(xs, shape, ms, vs))
}

/// Training-mode batch norm forward: statistics, running-statistics update (when given, with
/// `r = (1 − factor)·r + factor·batch`), normalization; writes `out`, `save_mean`, `save_invstd`.
/// Zero sizes as `batch_norm_statistics`; a rejected call writes nothing.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, eps, factor, running_mean, running_var, out, save_mean, save_invstd))]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_train(
    py: Python<'_>,
    x: Arg,
    weight: OptArg,
    bias: OptArg,
    #[pyo3(from_py_with = scalars::real)] eps: f64,
    #[pyo3(from_py_with = scalars::real)] factor: f64,
    running_mean: OptArg,
    running_var: OptArg,
    out: Arg,
    save_mean: Arg,
    save_invstd: Arg,
) -> Result<(), Error> {
    let args = TrainArgs {
        weight,
        bias,
        eps,
        factor,
        running_mean,
        running_var,
        out,
        save_mean,
        save_invstd,
    };
    dispatch_float!(x, "x", train_typed(py, x, &args))
}

struct TrainArgs<'a, 'py> {
    weight: OptArg<'a, 'py>,
    bias: OptArg<'a, 'py>,
    eps: f64,
    factor: f64,
    running_mean: OptArg<'a, 'py>,
    running_var: OptArg<'a, 'py>,
    out: Arg<'a, 'py>,
    save_mean: Arg<'a, 'py>,
    save_invstd: Arg<'a, 'py>,
}

fn train_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: Arg<'_, 'py>,
    a: &TrainArgs<'_, 'py>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "batch_norm_forward_train");
    let x = args.read::<T>(x, "x")?;
    let shape = norm_shape(x.shape())?;
    let c = [shape.channels];
    let weight = args.read_opt::<T>(a.weight, "weight", &c)?;
    let bias = args.read_opt::<T>(a.bias, "bias", &c)?;
    let mut rm = args.write_opt::<T>(a.running_mean, "running_mean", &c)?;
    let mut rv = args.write_opt::<T>(a.running_var, "running_var", &c)?;
    let mut out = args.write_shaped::<T>(a.out, "out", x.shape())?;
    let mut mean = args.write_shaped::<T>(a.save_mean, "save_mean", &c)?;
    let mut invstd = args.write_shaped::<T>(a.save_invstd, "save_invstd", &c)?;
    let running = match (
        slice_mut_opt(&mut rm, "running_mean")?,
        slice_mut_opt(&mut rv, "running_var")?,
    ) {
        (Some(mean), Some(var)) => Some(RunningStats {
            mean,
            var,
            factor: a.factor,
        }),
        (None, None) => None,
        _ => {
            return Err(Error::Value(
                "running_mean and running_var must be given together".into(),
            ))
        }
    };
    let (xs, ws, bs) = (
        slice(&x, "x")?,
        slice_opt(&weight, "weight")?,
        slice_opt(&bias, "bias")?,
    );
    let os = slice_mut(&mut out, "out")?;
    let (ms, ss) = (
        slice_mut(&mut mean, "save_mean")?,
        slice_mut(&mut invstd, "save_invstd")?,
    );
    let eps = a.eps;
    args.run(|| norm::batch_norm_forward_train(xs, shape, ws, bs, eps, running, os, ms, ss))
}

/// `out = (x − mean)·invstd·weight + bias` per channel; weight and bias may be None. Zero sizes:
/// an empty `out`.
#[pyfunction]
pub fn batch_norm_normalize(
    py: Python<'_>,
    x: Arg,
    mean: Arg,
    invstd: Arg,
    weight: OptArg,
    bias: OptArg,
    out: Arg,
) -> Result<(), Error> {
    dispatch_float!(
        x,
        "x",
        normalize_typed(py, x, [mean, invstd], [weight, bias], out)
    )
}

fn normalize_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: Arg<'_, 'py>,
    stats: [Arg<'_, 'py>; 2],
    affine: [OptArg<'_, 'py>; 2],
    out: Arg<'_, 'py>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "batch_norm_normalize");
    let x = args.read::<T>(x, "x")?;
    let shape = norm_shape(x.shape())?;
    let c = [shape.channels];
    let mean = args.read_shaped::<T>(stats[0], "mean", &c)?;
    let invstd = args.read_shaped::<T>(stats[1], "invstd", &c)?;
    let weight = args.read_opt::<T>(affine[0], "weight", &c)?;
    let bias = args.read_opt::<T>(affine[1], "bias", &c)?;
    let mut out = args.write_shaped::<T>(out, "out", x.shape())?;
    let (xs, ms, ss) = (
        slice(&x, "x")?,
        slice(&mean, "mean")?,
        slice(&invstd, "invstd")?,
    );
    let (ws, bs) = (slice_opt(&weight, "weight")?, slice_opt(&bias, "bias")?);
    let os = slice_mut(&mut out, "out")?;
    args.run(|| norm::batch_norm_normalize(xs, shape, ms, ss, ws, bs, os))
}

/// The saved statistics and gradients of a normalization's backward pass, borrowed and
/// shape-checked: `stats` and `input` have `stat_len` and `x`'s shape, `weight`/`bias` have
/// `param_len` elements.
struct NormBackward<'py, T: Element> {
    dy: numpy::PyReadonlyArrayDyn<'py, T>,
    mean: numpy::PyReadonlyArrayDyn<'py, T>,
    invstd: numpy::PyReadonlyArrayDyn<'py, T>,
    weight: Option<numpy::PyReadonlyArrayDyn<'py, T>>,
    gx: Option<numpy::PyReadwriteArrayDyn<'py, T>>,
    gw: Option<numpy::PyReadwriteArrayDyn<'py, T>>,
    gb: Option<numpy::PyReadwriteArrayDyn<'py, T>>,
}

struct BackwardArgs<'a, 'py> {
    grad_output: Arg<'a, 'py>,
    mean: Arg<'a, 'py>,
    invstd: Arg<'a, 'py>,
    weight: OptArg<'a, 'py>,
    grad_input: OptArg<'a, 'py>,
    grad_weight: OptArg<'a, 'py>,
    grad_bias: OptArg<'a, 'py>,
}

impl<'py, T: Element> NormBackward<'py, T> {
    fn borrow(
        args: &mut Args<'py>,
        a: &BackwardArgs<'_, 'py>,
        x_shape: &[usize],
        stat_len: usize,
        param_len: usize,
    ) -> Result<Self, Error> {
        Ok(NormBackward {
            dy: args.read_shaped::<T>(a.grad_output, "grad_output", x_shape)?,
            mean: args.read_shaped::<T>(a.mean, "mean", &[stat_len])?,
            invstd: args.read_shaped::<T>(a.invstd, "invstd", &[stat_len])?,
            weight: args.read_opt::<T>(a.weight, "weight", &[param_len])?,
            gx: args.write_opt::<T>(a.grad_input, "grad_input", x_shape)?,
            gw: args.write_opt::<T>(a.grad_weight, "grad_weight", &[param_len])?,
            gb: args.write_opt::<T>(a.grad_bias, "grad_bias", &[param_len])?,
        })
    }
}

/// Backward pass of batch norm; `batch_stats` says whether the forward used batch statistics.
/// Zero channels or no values per channel: `grad_weight`/`grad_bias` unchanged (sums of nothing).
#[pyfunction]
#[pyo3(signature = (x, grad_output, mean, invstd, weight, batch_stats, grad_input, grad_weight, grad_bias))]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    py: Python<'_>,
    x: Arg,
    grad_output: Arg,
    mean: Arg,
    invstd: Arg,
    weight: OptArg,
    batch_stats: bool,
    grad_input: OptArg,
    grad_weight: OptArg,
    grad_bias: OptArg,
) -> Result<(), Error> {
    let args = BackwardArgs {
        grad_output,
        mean,
        invstd,
        weight,
        grad_input,
        grad_weight,
        grad_bias,
    };
    dispatch_float!(x, "x", bn_backward_typed(py, x, &args, batch_stats))
}

fn bn_backward_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: Arg<'_, 'py>,
    a: &BackwardArgs<'_, 'py>,
    batch_stats: bool,
) -> Result<(), Error> {
    let mut args = Args::new(py, "batch_norm_backward");
    let x = args.read::<T>(x, "x")?;
    let shape = norm_shape(x.shape())?;
    let c = shape.channels;
    let mut b = NormBackward::<T>::borrow(&mut args, a, x.shape(), c, c)?;
    let (xs, dys) = (slice(&x, "x")?, slice(&b.dy, "grad_output")?);
    let (ms, ss, ws) = (
        slice(&b.mean, "mean")?,
        slice(&b.invstd, "invstd")?,
        slice_opt(&b.weight, "weight")?,
    );
    let grads = BatchNormGrads {
        input: slice_mut_opt(&mut b.gx, "grad_input")?,
        weight: slice_mut_opt(&mut b.gw, "grad_weight")?,
        bias: slice_mut_opt(&mut b.gb, "grad_bias")?,
    };
    args.run(|| norm::batch_norm_backward(xs, dys, shape, ms, ss, ws, batch_stats, grads))
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

/// Layer norm over the last `features` values of each row; writes `out`, `mean`, `invstd`. Zero
/// rows: empty results; zero features: ValueError.
#[pyfunction]
#[pyo3(signature = (x, features, weight, bias, eps, out, mean, invstd))]
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_forward(
    py: Python<'_>,
    x: Arg,
    #[pyo3(from_py_with = scalars::natural_usize)] features: usize,
    weight: OptArg,
    bias: OptArg,
    #[pyo3(from_py_with = scalars::real)] eps: f64,
    out: Arg,
    mean: Arg,
    invstd: Arg,
) -> Result<(), Error> {
    dispatch_float!(
        x,
        "x",
        ln_forward_typed(py, x, features, [weight, bias], eps, [out, mean, invstd])
    )
}

fn ln_forward_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: Arg<'_, 'py>,
    features: usize,
    affine: [OptArg<'_, 'py>; 2],
    eps: f64,
    outputs: [Arg<'_, 'py>; 3],
) -> Result<(), Error> {
    let mut args = Args::new(py, "layer_norm_forward");
    let x = args.read::<T>(x, "x")?;
    let rows = [layer_rows(x.shape(), features)?];
    let weight = args.read_opt::<T>(affine[0], "weight", &[features])?;
    let bias = args.read_opt::<T>(affine[1], "bias", &[features])?;
    let mut out = args.write_shaped::<T>(outputs[0], "out", x.shape())?;
    let mut mean = args.write_shaped::<T>(outputs[1], "mean", &rows)?;
    let mut invstd = args.write_shaped::<T>(outputs[2], "invstd", &rows)?;
    let (xs, ws, bs) = (
        slice(&x, "x")?,
        slice_opt(&weight, "weight")?,
        slice_opt(&bias, "bias")?,
    );
    let os = slice_mut(&mut out, "out")?;
    let (ms, ss) = (
        slice_mut(&mut mean, "mean")?,
        slice_mut(&mut invstd, "invstd")?,
    );
    args.run(|| norm::layer_norm_forward(xs, features, ws, bs, eps, os, ms, ss))
}

/// Layer norm backward: overwrites `grad_input`, accumulates `grad_weight`, `grad_bias`.
#[pyfunction]
#[pyo3(signature = (x, grad_output, features, mean, invstd, weight, grad_input, grad_weight, grad_bias))]
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    py: Python<'_>,
    x: Arg,
    grad_output: Arg,
    #[pyo3(from_py_with = scalars::natural_usize)] features: usize,
    mean: Arg,
    invstd: Arg,
    weight: OptArg,
    grad_input: Arg,
    grad_weight: OptArg,
    grad_bias: OptArg,
) -> Result<(), Error> {
    let grad_input = Some(grad_input);
    let args = BackwardArgs {
        grad_output,
        mean,
        invstd,
        weight,
        grad_input,
        grad_weight,
        grad_bias,
    };
    dispatch_float!(x, "x", ln_backward_typed(py, x, features, &args))
}

fn ln_backward_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: Arg<'_, 'py>,
    features: usize,
    a: &BackwardArgs<'_, 'py>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "layer_norm_backward");
    let x = args.read::<T>(x, "x")?;
    let rows = layer_rows(x.shape(), features)?;
    let mut b = NormBackward::<T>::borrow(&mut args, a, x.shape(), rows, features)?;
    let (xs, dys) = (slice(&x, "x")?, slice(&b.dy, "grad_output")?);
    let (ms, ss, ws) = (
        slice(&b.mean, "mean")?,
        slice(&b.invstd, "invstd")?,
        slice_opt(&b.weight, "weight")?,
    );
    let gws = slice_mut_opt(&mut b.gw, "grad_weight")?;
    let gbs = slice_mut_opt(&mut b.gb, "grad_bias")?;
    let Some(gxs) = slice_mut_opt(&mut b.gx, "grad_input")? else {
        return Ok(());
    };
    args.run(|| norm::layer_norm_backward(xs, dys, features, ms, ss, ws, gxs, gws, gbs))
}

/// Inverted dropout with a mask drawn from `seed`: writes `out = x·mask` and `mask`.
#[pyfunction]
pub fn dropout_forward(
    py: Python<'_>,
    x: Arg,
    #[pyo3(from_py_with = scalars::real)] p: f64,
    #[pyo3(from_py_with = scalars::natural_u64)] seed: u64,
    out: Arg,
    mask: Arg,
) -> Result<(), Error> {
    dispatch_float!(x, "x", dropout_typed(py, x, p, seed, out, mask))
}

fn dropout_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: Arg<'_, 'py>,
    p: f64,
    seed: u64,
    out: Arg<'_, 'py>,
    mask: Arg<'_, 'py>,
) -> Result<(), Error> {
    let mut args = Args::new(py, "dropout_forward");
    let x = args.read::<T>(x, "x")?;
    let mut out = args.write_shaped::<T>(out, "out", x.shape())?;
    let mut mask = args.write_shaped::<T>(mask, "mask", x.shape())?;
    let (xs, os, ms) = (
        slice(&x, "x")?,
        slice_mut(&mut out, "out")?,
        slice_mut(&mut mask, "mask")?,
    );
    args.run(|| norm::dropout_forward(xs, p, seed, os, ms))
}
