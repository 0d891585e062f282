//! Bindings of the fused optimizer updates and gradient clipping. Every update writes the
//! parameter and its state buffers in place; all arrays have the parameter's shape and dtype.

use super::arrays::{dispatch_float, slice, slice_mut, slice_mut_opt, Args};
use super::scalars;
use crate::error::Error;
use numpy::{Element, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use saddlepoint_kernels::optim::{self, Adagrad, Adam, RmsProp, Sgd};
use saddlepoint_kernels::{clip, Float};

/// The call's guard, the parameter, its gradient and its optional state buffers, borrowed and
/// shape-checked.
struct Update<'py, T: Element> {
    args: Args<'py>,
    param: PyReadwriteArrayDyn<'py, T>,
    grad: numpy::PyReadonlyArrayDyn<'py, T>,
    buffers: Vec<Option<PyReadwriteArrayDyn<'py, T>>>,
}

impl<'py, T: Element + Float> Update<'py, T> {
    fn borrow(
        mut args: Args<'py>,
        param: &Bound<'py, PyAny>,
        grad: &Bound<'py, PyAny>,
        buffers: &[(&'static str, Option<&Bound<'py, PyAny>>)],
    ) -> Result<Self, Error> {
        let param = args.write::<T>(param, "param")?;
        let shape = param.shape().to_vec();
        let grad = args.read_shaped::<T>(grad, "grad", &shape)?;
        let buffers = buffers
            .iter()
            .map(|&(name, buffer)| args.write_opt::<T>(buffer, name, &shape))
            .collect::<Result<_, _>>()?;
        Ok(Update {
            args,
            param,
            grad,
            buffers,
        })
    }

    /// `(guard, param, grad, buffers)`, the arrays as slices.
    #[allow(clippy::type_complexity)]
    fn slices(&mut self) -> Result<(&Args<'py>, &mut [T], &[T], Vec<Option<&mut [T]>>), Error> {
        let buffers = self
            .buffers
            .iter_mut()
            .map(|b| slice_mut_opt(b, "buffer"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((
            &self.args,
            slice_mut(&mut self.param, "param")?,
            slice(&self.grad, "grad")?,
            buffers,
        ))
    }
}

/// SGD with momentum (see the kernel's formula); `first_step` sets the buffer to the gradient.
#[pyfunction]
#[pyo3(signature = (param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov, weight_decay, maximize, first_step))]
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    py: Python<'_>,
    param: &Bound<'_, PyAny>,
    grad: &Bound<'_, PyAny>,
    momentum_buffer: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = scalars::real)] lr: f64,
    #[pyo3(from_py_with = scalars::real)] momentum: f64,
    #[pyo3(from_py_with = scalars::real)] dampening: f64,
    nesterov: bool,
    #[pyo3(from_py_with = scalars::real)] weight_decay: f64,
    maximize: bool,
    first_step: bool,
) -> Result<(), Error> {
    let h = Sgd {
        lr,
        momentum,
        dampening,
        nesterov,
        weight_decay,
        maximize,
    };
    dispatch_float!(
        param,
        "param",
        sgd_typed(py, param, grad, momentum_buffer, first_step, h)
    )
}

fn sgd_typed<'py, T: Float + Element>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    momentum_buffer: Option<&Bound<'py, PyAny>>,
    first_step: bool,
    h: Sgd,
) -> Result<(), Error> {
    let args = Args::new(py, "sgd_step");
    let buffers = [("momentum_buffer", momentum_buffer)];
    let mut update = Update::<T>::borrow(args, param, grad, &buffers)?;
    let (args, p, g, buffers) = update.slices()?;
    let Ok([buffer]) = <[Option<&mut [T]>; 1]>::try_from(buffers) else {
        return Err(Error::Value("momentum_buffer has the wrong form".into()));
    };
    args.run(|| optim::sgd_step(p, g, buffer, first_step, h))
}

/// Adagrad with the step's decayed rate `clr`.
#[pyfunction]
#[pyo3(signature = (param, grad, sum, *, clr, eps, weight_decay, maximize))]
#[allow(clippy::too_many_arguments)]
pub fn adagrad_step(
    py: Python<'_>,
    param: &Bound<'_, PyAny>,
    grad: &Bound<'_, PyAny>,
    sum: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = scalars::real)] clr: f64,
    #[pyo3(from_py_with = scalars::real)] eps: f64,
    #[pyo3(from_py_with = scalars::real)] weight_decay: f64,
    maximize: bool,
) -> Result<(), Error> {
    let h = Adagrad {
        clr,
        eps,
        weight_decay,
        maximize,
    };
    dispatch_float!(param, "param", adagrad_typed(py, param, grad, sum, h))
}

fn adagrad_typed<'py, T: Float + Element>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    sum: &Bound<'py, PyAny>,
    h: Adagrad,
) -> Result<(), Error> {
    let args = Args::new(py, "adagrad_step");
    let mut update = Update::<T>::borrow(args, param, grad, &[("sum", Some(sum))])?;
    let (args, p, g, buffers) = update.slices()?;
    let Ok([Some(sum)]) = <[Option<&mut [T]>; 1]>::try_from(buffers) else {
        return Err(Error::Value("sum is required".into()));
    };
    args.run(|| optim::adagrad_step(p, g, sum, h))
}

/// RMSprop; `grad_avg` when centered, `momentum_buffer` when momentum > 0.
#[pyfunction]
#[pyo3(signature = (param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay, momentum, maximize))]
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_step(
    py: Python<'_>,
    param: &Bound<'_, PyAny>,
    grad: &Bound<'_, PyAny>,
    square_avg: &Bound<'_, PyAny>,
    grad_avg: Option<&Bound<'_, PyAny>>,
    momentum_buffer: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = scalars::real)] lr: f64,
    #[pyo3(from_py_with = scalars::real)] alpha: f64,
    #[pyo3(from_py_with = scalars::real)] eps: f64,
    #[pyo3(from_py_with = scalars::real)] weight_decay: f64,
    #[pyo3(from_py_with = scalars::real)] momentum: f64,
    maximize: bool,
) -> Result<(), Error> {
    let h = RmsProp {
        lr,
        alpha,
        eps,
        weight_decay,
        momentum,
        maximize,
    };
    dispatch_float!(
        param,
        "param",
        rmsprop_typed(py, param, grad, square_avg, grad_avg, momentum_buffer, h)
    )
}

fn rmsprop_typed<'py, T: Float + Element>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    square_avg: &Bound<'py, PyAny>,
    grad_avg: Option<&Bound<'py, PyAny>>,
    momentum_buffer: Option<&Bound<'py, PyAny>>,
    h: RmsProp,
) -> Result<(), Error> {
    let names = [
        ("square_avg", Some(square_avg)),
        ("grad_avg", grad_avg),
        ("momentum_buffer", momentum_buffer),
    ];
    let args = Args::new(py, "rmsprop_step");
    let mut update = Update::<T>::borrow(args, param, grad, &names)?;
    let (args, p, g, buffers) = update.slices()?;
    let Ok([Some(v), ga, b]) = <[Option<&mut [T]>; 3]>::try_from(buffers) else {
        return Err(Error::Value("square_avg is required".into()));
    };
    args.run(|| optim::rmsprop_step(p, g, v, ga, b, h))
}

/// Adam and AdamW; `max_exp_avg_sq` for AMSGrad.
#[pyfunction]
#[pyo3(signature = (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize, step_size, bias_correction2_sqrt))]
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    py: Python<'_>,
    param: &Bound<'_, PyAny>,
    grad: &Bound<'_, PyAny>,
    exp_avg: &Bound<'_, PyAny>,
    exp_avg_sq: &Bound<'_, PyAny>,
    max_exp_avg_sq: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = scalars::real)] lr: f64,
    #[pyo3(from_py_with = scalars::real)] beta1: f64,
    #[pyo3(from_py_with = scalars::real)] beta2: f64,
    #[pyo3(from_py_with = scalars::real)] eps: f64,
    #[pyo3(from_py_with = scalars::real)] weight_decay: f64,
    decoupled_weight_decay: bool,
    maximize: bool,
    #[pyo3(from_py_with = scalars::real)] step_size: f64,
    #[pyo3(from_py_with = scalars::real)] bias_correction2_sqrt: f64,
) -> Result<(), Error> {
    let h = Adam {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled_weight_decay,
        maximize,
        step_size,
        bias_correction2_sqrt,
    };
    dispatch_float!(
        param,
        "param",
        adam_typed(py, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, h)
    )
}

fn adam_typed<'py, T: Float + Element>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    exp_avg: &Bound<'py, PyAny>,
    exp_avg_sq: &Bound<'py, PyAny>,
    max_exp_avg_sq: Option<&Bound<'py, PyAny>>,
    h: Adam,
) -> Result<(), Error> {
    let names = [
        ("exp_avg", Some(exp_avg)),
        ("exp_avg_sq", Some(exp_avg_sq)),
        ("max_exp_avg_sq", max_exp_avg_sq),
    ];
    let args = Args::new(py, "adam_step");
    let mut update = Update::<T>::borrow(args, param, grad, &names)?;
    let (args, p, g, buffers) = update.slices()?;
    let Ok([Some(m), Some(v), vmax]) = <[Option<&mut [T]>; 3]>::try_from(buffers) else {
        return Err(Error::Value("exp_avg and exp_avg_sq are required".into()));
    };
    args.run(|| optim::adam_step(p, g, m, v, vmax, h))
}

/// `Σ|x|^p` of an array (or `max|x|` for p = inf), for a joint gradient norm.
#[pyfunction]
pub fn norm_part(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = scalars::real)] norm_type: f64,
) -> Result<f64, Error> {
    dispatch_float!(x, "x", norm_part_typed(py, x, norm_type))
}

fn norm_part_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    norm_type: f64,
) -> Result<f64, Error> {
    let mut args = Args::new(py, "norm_part");
    let x = args.read::<T>(x, "x")?;
    let xs = slice(&x, "x")?;
    args.run(|| clip::norm_part(xs, norm_type))
}

/// Whether every element of `x` is finite (no NaN, no infinity).
#[pyfunction]
pub fn all_finite(py: Python<'_>, x: &Bound<'_, PyAny>) -> Result<bool, Error> {
    dispatch_float!(x, "x", all_finite_typed(py, x))
}

fn all_finite_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> Result<bool, Error> {
    let mut args = Args::new(py, "all_finite");
    let x = args.read::<T>(x, "x")?;
    let xs = slice(&x, "x")?;
    args.run(|| Ok(clip::all_finite(xs)))
}

/// `x *= factor` in place.
#[pyfunction]
pub fn scale_(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = scalars::real)] factor: f64,
) -> Result<(), Error> {
    dispatch_float!(x, "x", scale_typed(py, x, factor))
}

fn scale_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    factor: f64,
) -> Result<(), Error> {
    let mut args = Args::new(py, "scale_");
    let mut x = args.write::<T>(x, "x")?;
    let xs = slice_mut(&mut x, "x")?;
    args.run(|| {
        clip::scale(xs, factor);
        Ok(())
    })
}

/// Clamps `x` to `[-clip_value, clip_value]` in place.
#[pyfunction]
pub fn clamp_(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = scalars::real)] clip_value: f64,
) -> Result<(), Error> {
    dispatch_float!(x, "x", clamp_typed(py, x, clip_value))
}

fn clamp_typed<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    clip_value: f64,
) -> Result<(), Error> {
    let mut args = Args::new(py, "clamp_");
    let mut x = args.write::<T>(x, "x")?;
    let xs = slice_mut(&mut x, "x")?;
    args.run(|| clip::clamp(xs, clip_value))
}
