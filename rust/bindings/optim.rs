//! Bindings of the fused optimizer updates, multi-tensor: each call steps every tensor of a
//! parameter group (PyTorch's "foreach" path), with the GIL released once. Every array argument
//! is a list with one array per `param` array (one array is a list of one), each array like its
//! param (shape and dtype); every update writes the params and their state in place. Scalars
//! that differ between tensors (`first_step`, `clr`, `step_size`, `bias_correction2_sqrt`) are
//! one value or a list of one value per tensor.

use super::arrays::{data_all, data_opt_all, per_tensor, with_float, Args, Arr, List, OptArr};
use super::scalars::real;
use crate::error::Error;
use numpy::PyUntypedArrayMethods;
use pyo3::prelude::*;
use saddlepoint_kernels::optim::{self, Adagrad, Adam, AdagradState, AdamState, RmsProp};
use saddlepoint_kernels::optim::{RmsPropState, Sgd, SgdState, Tensor};

/// The params and grads of a call: the param list and, for each tensor, its shape.
struct Group<'py> {
    args: Args<'py>,
    param: List<'py>,
    grad: List<'py>,
}

impl<'py> Group<'py> {
    fn new(py: Python<'py>, function: &'static str, param: Arr<'_, 'py>, grad: Arr<'_, 'py>) -> Result<Self, Error> {
        let param = List::new(param, "param", None)?;
        let grad = List::new(grad, "grad", Some(param.len()))?;
        let args = Args::new(py, function);
        Ok(Group { args, param, grad })
    }

    fn list(&self, obj: Arr<'_, 'py>, name: &'static str) -> Result<List<'py>, Error> {
        List::new(obj, name, Some(self.param.len()))
    }
}

/// Runs `$body` with `$T` the dtype of the first param and `$shapes` the params' shapes, after
/// borrowing `$p` (params, written) and `$g` (grads, read) as slices; no params: nothing to do.
macro_rules! with_params {
    ($group:ident, |$T:ident, $p:ident, $g:ident, $shapes:ident| $body:expr) => {{
        let Some((first, name)) = $group.param.first() else {
            return Ok(());
        };
        with_float!(first, &name, |$T| {
            let mut params = $group.args.write_list::<$T>(&$group.param, None)?;
            let $shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
            let grads = $group.args.read_list::<$T>(&$group.grad, &$shapes)?;
            let ($p, $g) = (data_all(&mut params)?, data_all(&grads)?);
            $body
        })
    }};
}

/// SGD with momentum; `first_step` (per tensor) sets the buffer to the gradient.
#[pyfunction]
#[pyo3(signature = (param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov, weight_decay, maximize, first_step))]
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    py: Python<'_>,
    param: Arr,
    grad: Arr,
    momentum_buffer: OptArr,
    #[pyo3(from_py_with = real)] lr: f64,
    #[pyo3(from_py_with = real)] momentum: f64,
    #[pyo3(from_py_with = real)] dampening: f64,
    nesterov: bool,
    #[pyo3(from_py_with = real)] weight_decay: f64,
    maximize: bool,
    first_step: Arr,
) -> Result<(), Error> {
    let mut group = Group::new(py, "sgd_step", param, grad)?;
    let n = group.param.len();
    let buffers = List::opt(momentum_buffer, "momentum_buffer", n)?;
    let first_step = per_tensor(first_step, "first_step", n, |o| o.extract::<bool>())?;
    let h = |first_step| Sgd { lr, momentum, dampening, nesterov, weight_decay, maximize, first_step };
    with_params!(group, |T, p, g, shapes| {
        let mut b = group.args.write_opt_list::<T>(&buffers, &shapes)?;
        let b = data_opt_all(&mut b, n)?;
        let tensors = (p.into_iter().zip(g).zip(b).zip(&first_step))
            .map(|(((param, grad), momentum_buffer), &f)| {
                let state = SgdState { momentum_buffer };
                (Tensor { param, grad, state }, h(f))
            });
        group.args.run(|| optim::steps(tensors.collect()))
    })
}

/// Adagrad with the step's decayed rate `clr` (per tensor).
#[pyfunction]
#[pyo3(signature = (param, grad, sum, *, clr, eps, weight_decay, maximize))]
#[allow(clippy::too_many_arguments)]
pub fn adagrad_step(
    py: Python<'_>,
    param: Arr,
    grad: Arr,
    sum: Arr,
    clr: Arr,
    #[pyo3(from_py_with = real)] eps: f64,
    #[pyo3(from_py_with = real)] weight_decay: f64,
    maximize: bool,
) -> Result<(), Error> {
    let mut group = Group::new(py, "adagrad_step", param, grad)?;
    let sums = group.list(sum, "sum")?;
    let clr = per_tensor(clr, "clr", group.param.len(), real)?;
    let h = |clr| Adagrad { clr, eps, weight_decay, maximize };
    with_params!(group, |T, p, g, shapes| {
        let mut s = group.args.write_list::<T>(&sums, Some(&shapes))?;
        let s = data_all(&mut s)?;
        let tensors = (p.into_iter().zip(g).zip(s).zip(&clr)).map(|(((param, grad), sum), &c)| {
            (Tensor { param, grad, state: AdagradState { sum } }, h(c))
        });
        group.args.run(|| optim::steps(tensors.collect()))
    })
}

/// RMSprop; `grad_avg` when centered, `momentum_buffer` when momentum > 0 (lists or None).
#[pyfunction]
#[pyo3(signature = (param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay, momentum, maximize))]
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_step(
    py: Python<'_>,
    param: Arr,
    grad: Arr,
    square_avg: Arr,
    grad_avg: OptArr,
    momentum_buffer: OptArr,
    #[pyo3(from_py_with = real)] lr: f64,
    #[pyo3(from_py_with = real)] alpha: f64,
    #[pyo3(from_py_with = real)] eps: f64,
    #[pyo3(from_py_with = real)] weight_decay: f64,
    #[pyo3(from_py_with = real)] momentum: f64,
    maximize: bool,
) -> Result<(), Error> {
    let mut group = Group::new(py, "rmsprop_step", param, grad)?;
    let n = group.param.len();
    let square_avg = group.list(square_avg, "square_avg")?;
    let grad_avg = List::opt(grad_avg, "grad_avg", n)?;
    let buffers = List::opt(momentum_buffer, "momentum_buffer", n)?;
    let h = RmsProp { lr, alpha, eps, weight_decay, momentum, maximize };
    with_params!(group, |T, p, g, shapes| {
        let mut v = group.args.write_list::<T>(&square_avg, Some(&shapes))?;
        let mut ga = group.args.write_opt_list::<T>(&grad_avg, &shapes)?;
        let mut b = group.args.write_opt_list::<T>(&buffers, &shapes)?;
        let (v, ga, b) = (data_all(&mut v)?, data_opt_all(&mut ga, n)?, data_opt_all(&mut b, n)?);
        let tensors = (p.into_iter().zip(g).zip(v).zip(ga).zip(b)).map(
            |((((param, grad), square_avg), grad_avg), momentum_buffer)| {
                let state = RmsPropState { square_avg, grad_avg, momentum_buffer };
                (Tensor { param, grad, state }, h)
            },
        );
        group.args.run(|| optim::steps(tensors.collect()))
    })
}

/// Adam and AdamW; `max_exp_avg_sq` (a list or None) for AMSGrad; `step_size` and
/// `bias_correction2_sqrt` per tensor.
#[pyfunction]
#[pyo3(signature = (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize, step_size, bias_correction2_sqrt))]
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    py: Python<'_>,
    param: Arr,
    grad: Arr,
    exp_avg: Arr,
    exp_avg_sq: Arr,
    max_exp_avg_sq: OptArr,
    #[pyo3(from_py_with = real)] lr: f64,
    #[pyo3(from_py_with = real)] beta1: f64,
    #[pyo3(from_py_with = real)] beta2: f64,
    #[pyo3(from_py_with = real)] eps: f64,
    #[pyo3(from_py_with = real)] weight_decay: f64,
    decoupled_weight_decay: bool,
    maximize: bool,
    step_size: Arr,
    bias_correction2_sqrt: Arr,
) -> Result<(), Error> {
    let mut group = Group::new(py, "adam_step", param, grad)?;
    let n = group.param.len();
    let (m, v) = (group.list(exp_avg, "exp_avg")?, group.list(exp_avg_sq, "exp_avg_sq")?);
    let vmax = List::opt(max_exp_avg_sq, "max_exp_avg_sq", n)?;
    let step_size = per_tensor(step_size, "step_size", n, real)?;
    let bc2 = per_tensor(bias_correction2_sqrt, "bias_correction2_sqrt", n, real)?;
    let decoupled = decoupled_weight_decay;
    let h = |step_size, bias_correction2_sqrt| Adam {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled_weight_decay: decoupled,
        maximize,
        step_size,
        bias_correction2_sqrt,
    };
    with_params!(group, |T, p, g, shapes| {
        let mut m = group.args.write_list::<T>(&m, Some(&shapes))?;
        let mut v = group.args.write_list::<T>(&v, Some(&shapes))?;
        let mut vmax = group.args.write_opt_list::<T>(&vmax, &shapes)?;
        let (m, v, vmax) = (data_all(&mut m)?, data_all(&mut v)?, data_opt_all(&mut vmax, n)?);
        let scalars = step_size.iter().zip(&bc2);
        let tensors = (p.into_iter().zip(g).zip(m).zip(v).zip(vmax).zip(scalars)).map(
            |(((((param, grad), exp_avg), exp_avg_sq), max_exp_avg_sq), (&s, &b))| {
                let state = AdamState { exp_avg, exp_avg_sq, max_exp_avg_sq };
                (Tensor { param, grad, state }, h(s, b))
            },
        );
        group.args.run(|| optim::steps(tensors.collect()))
    })
}
