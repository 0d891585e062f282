//! Bindings of the fused optimizer updates, multi-tensor: each call steps every tensor of a
//! parameter group (PyTorch's "foreach" path), with the GIL released once. Every array argument
//! is a list with one array per `param` array (one array is a list of one), each array like its
//! param (shape and dtype); every update writes the params and their state in place. Scalars
//! that differ between tensors (`first_step`, `clr`, `step_size`, `bias_correction2_sqrt`) are
//! one value for all tensors or a list of one value per tensor.

use super::arrays::{per_tensor, with_float, Args, Arr, List, OptArr, Out};
use super::scalars::real;
use crate::error::Error;
use numpy::Element;
use pyo3::prelude::*;
use saddlepoint_kernels::optim::{
    self, Adagrad, AdagradState, Adam, AdamState, RmsProp, RmsPropState,
};
use saddlepoint_kernels::optim::{Sgd, SgdState, Tensor};

/// The data of each array of a list.
fn slices<'a, T: Element>(arrays: &'a mut [Out<'_, T>]) -> Vec<&'a mut [T]> {
    arrays.iter_mut().map(|a| &mut **a).collect()
}

/// The data of each array of an optional list, or None for every tensor when not given.
fn opt_slices<'a, T: Element>(
    arrays: &'a mut Option<Vec<Out<'_, T>>>,
    n: usize,
) -> Vec<Option<&'a mut [T]>> {
    match arrays {
        Some(a) => a.iter_mut().map(|a| Some(&mut **a)).collect(),
        None => (0..n).map(|_| None).collect(),
    }
}

/// Borrows the lists `$param` (written, any shape) and `$grad` (read, like the params) through
/// the guard `$a`; runs `$borrow` (which borrows the state lists, each like `$shapes`, the
/// params' shapes) with `$T` the params' dtype; then steps each param with its state from
/// `$states` and its hyperparameters from `$hyper`, in one kernel call. No params: nothing to do.
macro_rules! step_all {
    ($a:ident, $param:ident, $grad:ident, |$T:ident, $shapes:ident| { $($borrow:stmt;)* } => ($states:expr, $hyper:expr)) => {{
        let Some((first, name)) = $param.first() else { return Ok(()) };
        with_float!(first, &name, |$T| {
            let mut params = $a.write_list::<$T>(&$param, None)?;
            let $shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
            let grads = $a.read_list::<$T>(&$grad, &$shapes)?;
            $($borrow)*
            let (p, g) = (slices(&mut params).into_iter(), grads.iter().map(|g| &**g));
            let each = p.zip(g).zip($states).zip($hyper);
            let tensors: Vec<_> = each.map(|(((param, grad), state), h)| (Tensor { param, grad, state }, h)).collect();
            $a.run(|| optim::steps(tensors))
        })
    }};
}

/// SGD with momentum; `first_step` (per tensor) sets the buffer to the gradient.
#[pyfunction]
#[pyo3(signature = (param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov, weight_decay, maximize, first_step))]
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
    let (mut a, param) = (Args::new(py, "sgd_step"), List::new(param, "param", None)?);
    let n = param.len();
    let (grad, buffer) = (
        List::new(grad, "grad", Some(n))?,
        List::opt(momentum_buffer, "momentum_buffer", n)?,
    );
    let first_step = per_tensor(first_step, "first_step", n, |o| o.extract::<bool>())?;
    let h = |first_step| Sgd {
        lr,
        momentum,
        dampening,
        nesterov,
        weight_decay,
        maximize,
        first_step,
    };
    step_all!(a, param, grad, |T, shapes| {
        let mut b = a.write_opt_list::<T>(&buffer, &shapes)?;
    } => (
        opt_slices(&mut b, n).into_iter().map(|momentum_buffer| SgdState { momentum_buffer }),
        first_step.into_iter().map(h)
    ))
}

/// Adagrad with the step's decayed rate `clr` (per tensor).
#[pyfunction]
#[pyo3(signature = (param, grad, sum, *, clr, eps, weight_decay, maximize))]
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
    let (mut a, param) = (
        Args::new(py, "adagrad_step"),
        List::new(param, "param", None)?,
    );
    let n = param.len();
    let (grad, sum) = (
        List::new(grad, "grad", Some(n))?,
        List::new(sum, "sum", Some(n))?,
    );
    let clr = per_tensor(clr, "clr", n, real)?;
    let h = |clr| Adagrad {
        clr,
        eps,
        weight_decay,
        maximize,
    };
    step_all!(a, param, grad, |T, shapes| {
        let mut s = a.write_list::<T>(&sum, Some(&shapes))?;
    } => (slices(&mut s).into_iter().map(|sum| AdagradState { sum }), clr.into_iter().map(h)))
}

/// RMSprop; `grad_avg` when centered, `momentum_buffer` when momentum > 0 (lists or None).
#[pyfunction]
#[pyo3(signature = (param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay, momentum, maximize))]
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
    let (mut a, param) = (
        Args::new(py, "rmsprop_step"),
        List::new(param, "param", None)?,
    );
    let n = param.len();
    let (grad, square_avg) = (
        List::new(grad, "grad", Some(n))?,
        List::new(square_avg, "square_avg", Some(n))?,
    );
    let grad_avg = List::opt(grad_avg, "grad_avg", n)?;
    let buffer = List::opt(momentum_buffer, "momentum_buffer", n)?;
    let h = RmsProp {
        lr,
        alpha,
        eps,
        weight_decay,
        momentum,
        maximize,
    };
    step_all!(a, param, grad, |T, shapes| {
        let mut v = a.write_list::<T>(&square_avg, Some(&shapes))?;
        let mut ga = a.write_opt_list::<T>(&grad_avg, &shapes)?;
        let mut b = a.write_opt_list::<T>(&buffer, &shapes)?;
    } => (
        (slices(&mut v).into_iter().zip(opt_slices(&mut ga, n)).zip(opt_slices(&mut b, n)))
            .map(|((square_avg, grad_avg), momentum_buffer)| RmsPropState { square_avg, grad_avg, momentum_buffer }),
        std::iter::repeat(h)
    ))
}

/// Adam and AdamW; `max_exp_avg_sq` (a list or None) for AMSGrad; `step_size` and
/// `bias_correction2_sqrt` per tensor.
#[pyfunction]
#[pyo3(signature = (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize, step_size, bias_correction2_sqrt))]
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
    let (mut a, param) = (Args::new(py, "adam_step"), List::new(param, "param", None)?);
    let n = param.len();
    let (grad, m) = (
        List::new(grad, "grad", Some(n))?,
        List::new(exp_avg, "exp_avg", Some(n))?,
    );
    let (v, vmax) = (
        List::new(exp_avg_sq, "exp_avg_sq", Some(n))?,
        List::opt(max_exp_avg_sq, "max_exp_avg_sq", n)?,
    );
    let step_size = per_tensor(step_size, "step_size", n, real)?;
    let bc2 = per_tensor(bias_correction2_sqrt, "bias_correction2_sqrt", n, real)?;
    let decoupled = decoupled_weight_decay;
    let h = |(step_size, bias_correction2_sqrt)| Adam {
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
    step_all!(a, param, grad, |T, shapes| {
        let mut m = a.write_list::<T>(&m, Some(&shapes))?;
        let mut v = a.write_list::<T>(&v, Some(&shapes))?;
        let mut vmax = a.write_opt_list::<T>(&vmax, &shapes)?;
    } => (
        (slices(&mut m).into_iter().zip(slices(&mut v)).zip(opt_slices(&mut vmax, n)))
            .map(|((exp_avg, exp_avg_sq), max_exp_avg_sq)| AdamState { exp_avg, exp_avg_sq, max_exp_avg_sq }),
        step_size.into_iter().zip(bc2).map(h)
    ))
}
