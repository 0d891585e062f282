//! Bindings of the fused optimizer updates, multi-tensor: each call steps every tensor of a
//! parameter group (PyTorch's "foreach" path), with the GIL released once. Every array argument
//! is a list with one array per `param` array (one array is a list of one), each array like its
//! param (shape and dtype); every update writes the params and their state in place. Scalars
//! that differ between tensors (`first_step`, `clr`, `step_size`, `bias_correction2_sqrt`) are
//! one value for all tensors or a list of one value per tensor.

use super::arrays::{per_tensor, with_float, Args, Arr, Borrow, In, List, OptArr, Out};
use super::scalars::real;
use crate::error::Error;
use numpy::Element;
use pyo3::prelude::*;
use saddlepoint_kernels::optim::{self, Adagrad, AdagradState, Adam, AdamState, RmsProp, RmsPropState};
use saddlepoint_kernels::optim::{Sgd, SgdState, Tensor};

/// The arrays of a group borrowed: params (written, any shape), grads (read, each like its
/// param) and the params' shapes (those of every state list).
type Group<'py, T> = (Vec<Out<'py, T>>, Vec<In<'py, T>>, Vec<Vec<usize>>);

/// Borrows the lists `param` and `grad` of a group through the guard `a`.
fn group<'py, T: Element>(
    a: &mut Args<'py>, param: &List<'py>, grad: &List<'py>,
) -> Result<Group<'py, T>, Error> {
    let params: Vec<Out<T>> = a.list(param, None)?;
    let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
    Ok((params, a.list(grad, Some(&shapes))?, shapes))
}

/// Each tensor of a group for [`optim::steps`]: param, grad, state and hyperparameters.
fn tensors<'a, T: Element, S, H>(
    params: &'a mut [Out<'_, T>], grads: &'a [In<'_, T>], states: impl Iterator<Item = S>,
    hyper: impl Iterator<Item = H>,
) -> Vec<(Tensor<'a, T, S>, H)> {
    let each = params.iter_mut().zip(grads).zip(states).zip(hyper);
    each.map(|(((param, grad), state), h)| (Tensor { param, grad, state }, h)).collect()
}

/// SGD with momentum; `first_step` (per tensor) sets the buffer to the gradient.
#[pyfunction]
#[pyo3(signature = (param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov, weight_decay, maximize, first_step))]
pub fn sgd_step(
    py: Python<'_>, param: Arr, grad: Arr, momentum_buffer: OptArr, #[pyo3(from_py_with = real)] lr: f64,
    #[pyo3(from_py_with = real)] momentum: f64, #[pyo3(from_py_with = real)] dampening: f64, nesterov: bool,
    #[pyo3(from_py_with = real)] weight_decay: f64, maximize: bool, first_step: Arr,
) -> Result<(), Error> {
    let param = List::new(param, "param", None)?;
    let (n, mut a) = (param.len(), Args::new(py, "sgd_step"));
    let grad = List::new(grad, "grad", Some(n))?;
    let buffer = List::opt(momentum_buffer, "momentum_buffer", n)?;
    let first_step = per_tensor(first_step, "first_step", n, |o| o.extract::<bool>())?;
    let Some((first, name)) = param.first() else { return Ok(()) };
    with_float!(first, &name, |T| {
        let (mut params, grads, shapes) = group::<T>(&mut a, &param, &grad)?;
        let mut buffers: Vec<Option<Out<T>>> = a.opt_list(&buffer, &shapes)?;
        let states = buffers.iter_mut().map(|b| SgdState { momentum_buffer: b.as_deref_mut() });
        let hyper = first_step.iter().map(|&first_step| Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            maximize,
            first_step,
        });
        let tensors = tensors(&mut params, &grads, states, hyper);
        a.run(|| optim::steps(tensors))
    })
}

/// Adagrad with the step's decayed rate `clr` (per tensor).
#[pyfunction]
#[pyo3(signature = (param, grad, sum, *, clr, eps, weight_decay, maximize))]
pub fn adagrad_step(
    py: Python<'_>, param: Arr, grad: Arr, sum: Arr, clr: Arr, #[pyo3(from_py_with = real)] eps: f64,
    #[pyo3(from_py_with = real)] weight_decay: f64, maximize: bool,
) -> Result<(), Error> {
    let param = List::new(param, "param", None)?;
    let (n, mut a) = (param.len(), Args::new(py, "adagrad_step"));
    let (grad, sum) = (List::new(grad, "grad", Some(n))?, List::new(sum, "sum", Some(n))?);
    let clr = per_tensor(clr, "clr", n, real)?;
    let Some((first, name)) = param.first() else { return Ok(()) };
    with_float!(first, &name, |T| {
        let (mut params, grads, shapes) = group::<T>(&mut a, &param, &grad)?;
        let mut sums: Vec<Out<T>> = a.list(&sum, Some(&shapes))?;
        let states = sums.iter_mut().map(|sum| AdagradState { sum });
        let hyper = clr.iter().map(|&clr| Adagrad { clr, eps, weight_decay, maximize });
        let tensors = tensors(&mut params, &grads, states, hyper);
        a.run(|| optim::steps(tensors))
    })
}

/// RMSprop; `grad_avg` when centered, `momentum_buffer` when momentum > 0 (lists or None).
#[pyfunction]
#[pyo3(signature = (param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay, momentum, maximize))]
pub fn rmsprop_step(
    py: Python<'_>, param: Arr, grad: Arr, square_avg: Arr, grad_avg: OptArr, momentum_buffer: OptArr,
    #[pyo3(from_py_with = real)] lr: f64, #[pyo3(from_py_with = real)] alpha: f64,
    #[pyo3(from_py_with = real)] eps: f64, #[pyo3(from_py_with = real)] weight_decay: f64,
    #[pyo3(from_py_with = real)] momentum: f64, maximize: bool,
) -> Result<(), Error> {
    let param = List::new(param, "param", None)?;
    let (n, mut a) = (param.len(), Args::new(py, "rmsprop_step"));
    let grad = List::new(grad, "grad", Some(n))?;
    let square_avg = List::new(square_avg, "square_avg", Some(n))?;
    let grad_avg = List::opt(grad_avg, "grad_avg", n)?;
    let buffer = List::opt(momentum_buffer, "momentum_buffer", n)?;
    let Some((first, name)) = param.first() else { return Ok(()) };
    with_float!(first, &name, |T| {
        let (mut params, grads, shapes) = group::<T>(&mut a, &param, &grad)?;
        let mut v: Vec<Out<T>> = a.list(&square_avg, Some(&shapes))?;
        let mut ga: Vec<Option<Out<T>>> = a.opt_list(&grad_avg, &shapes)?;
        let mut b: Vec<Option<Out<T>>> = a.opt_list(&buffer, &shapes)?;
        let states = v.iter_mut().zip(&mut ga).zip(&mut b).map(|((v, ga), b)| RmsPropState {
            square_avg: v,
            grad_avg: ga.as_deref_mut(),
            momentum_buffer: b.as_deref_mut(),
        });
        let h = RmsProp { lr, alpha, eps, weight_decay, momentum, maximize };
        let tensors = tensors(&mut params, &grads, states, std::iter::repeat(h));
        a.run(|| optim::steps(tensors))
    })
}

/// Adam and AdamW; `max_exp_avg_sq` (a list or None) for AMSGrad; `step_size` and
/// `bias_correction2_sqrt` per tensor.
#[pyfunction]
#[pyo3(signature = (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize, step_size, bias_correction2_sqrt))]
pub fn adam_step(
    py: Python<'_>, param: Arr, grad: Arr, exp_avg: Arr, exp_avg_sq: Arr, max_exp_avg_sq: OptArr,
    #[pyo3(from_py_with = real)] lr: f64, #[pyo3(from_py_with = real)] beta1: f64,
    #[pyo3(from_py_with = real)] beta2: f64, #[pyo3(from_py_with = real)] eps: f64,
    #[pyo3(from_py_with = real)] weight_decay: f64, decoupled_weight_decay: bool, maximize: bool,
    step_size: Arr, bias_correction2_sqrt: Arr,
) -> Result<(), Error> {
    let param = List::new(param, "param", None)?;
    let (n, mut a) = (param.len(), Args::new(py, "adam_step"));
    let (grad, m) = (List::new(grad, "grad", Some(n))?, List::new(exp_avg, "exp_avg", Some(n))?);
    let v = List::new(exp_avg_sq, "exp_avg_sq", Some(n))?;
    let vmax = List::opt(max_exp_avg_sq, "max_exp_avg_sq", n)?;
    let step_size = per_tensor(step_size, "step_size", n, real)?;
    let bc2 = per_tensor(bias_correction2_sqrt, "bias_correction2_sqrt", n, real)?;
    let Some((first, name)) = param.first() else { return Ok(()) };
    with_float!(first, &name, |T| {
        let (mut params, grads, shapes) = group::<T>(&mut a, &param, &grad)?;
        let mut m: Vec<Out<T>> = a.list(&m, Some(&shapes))?;
        let mut v: Vec<Out<T>> = a.list(&v, Some(&shapes))?;
        let mut vmax: Vec<Option<Out<T>>> = a.opt_list(&vmax, &shapes)?;
        let states = m.iter_mut().zip(&mut v).zip(&mut vmax).map(|((m, v), vmax)| AdamState {
            exp_avg: m,
            exp_avg_sq: v,
            max_exp_avg_sq: vmax.as_deref_mut(),
        });
        let hyper = step_size.iter().zip(&bc2).map(|(&step_size, &bias_correction2_sqrt)| Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled_weight_decay,
            maximize,
            step_size,
            bias_correction2_sqrt,
        });
        let tensors = tensors(&mut params, &grads, states, hyper);
        a.run(|| optim::steps(tensors))
    })
}
