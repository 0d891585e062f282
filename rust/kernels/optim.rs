//! Fused optimizer updates: one pass over each parameter that reads the parameter, its gradient
//! and its state buffers and writes them in place, with no temporaries. The formulas are
//! PyTorch's (`torch.optim`, single-tensor path), so iterates match it to rounding.
//!
//! Step-dependent scalars (bias corrections, decayed rates) are computed once per step by the
//! caller and passed in; the loops see only constants.

use crate::error::check_len;
use crate::parallel::{for_each_chunk_group, worth_parallel_above};
use crate::scalar::cst;
use crate::{Float, KernelError};
use multiversion::multiversion;

/// Elements per task of an update: 64 KiB of each f32 array, so that a task's four streams
/// stay in L2 and the tasks of a 400k-parameter layer split evenly over the threads.
const CHUNK: usize = 16384;
/// An update on fewer elements runs on the calling thread: measured on 2 cores, Adam on two
/// threads wins from about 128k float32 parameters on.
const PAR_MIN_PARAMETERS: usize = 131072;

fn parallel(len: usize) -> bool {
    worth_parallel_above(len, PAR_MIN_PARAMETERS)
}

fn check_buffers<T>(grad: &[T], buffers: &[(&'static str, &[T])]) -> Result<(), KernelError> {
    for (name, buffer) in buffers {
        check_len(name, buffer, grad.len())?;
    }
    Ok(())
}

/// The gradient as the update sees it: negated to maximize, plus coupled L2 weight decay.
#[inline(always)]
fn effective_grad<T: Float>(g: T, p: T, maximize: bool, weight_decay: T) -> T {
    let g = if maximize { -g } else { g };
    if weight_decay != T::zero() {
        g + weight_decay * p
    } else {
        g
    }
}

/// Hyperparameters of [`sgd_step`].
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub maximize: bool,
}

/// SGD with momentum: `g += λθ; b = μb + (1−τ)g` (`b = g` on the first step); `θ −= lr·b`, or
/// `θ −= lr·(g + μb)` with Nesterov. `momentum_buffer` is required when `momentum != 0`.
pub fn sgd_step<T: Float>(
    param: &mut [T],
    grad: &[T],
    momentum_buffer: Option<&mut [T]>,
    first_step: bool,
    h: Sgd,
) -> Result<(), KernelError> {
    check_len("param", param, grad.len())?;
    let k = SgdConstants {
        lr: cst::<T>(h.lr),
        momentum: cst::<T>(h.momentum),
        keep: cst::<T>(1.0 - h.dampening),
        weight_decay: cst::<T>(h.weight_decay),
        nesterov: h.nesterov,
        maximize: h.maximize,
        first_step,
    };
    let parallel = parallel(grad.len());
    match momentum_buffer {
        None if h.momentum != 0.0 => Err(KernelError::value(
            "momentum_buffer",
            "is required when momentum != 0",
        )),
        None => {
            for_each_chunk_group(vec![param], grad, CHUNK, parallel, |bufs, grad| {
                if let [p] = bufs {
                    sgd_chunk(p, grad, &k)
                }
            });
            Ok(())
        }
        Some(buffer) => {
            check_buffers(grad, &[("momentum_buffer", buffer)])?;
            for_each_chunk_group(vec![param, buffer], grad, CHUNK, parallel, |bufs, grad| {
                if let [p, b] = bufs {
                    sgd_momentum_chunk(p, grad, b, &k)
                }
            });
            Ok(())
        }
    }
}

struct SgdConstants<T> {
    lr: T,
    momentum: T,
    keep: T,
    weight_decay: T,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
}

// Each chunk loop takes its buffers as separate `&mut` arguments, so the compiler knows they do
// not alias and vectorizes it; `multiversion` compiles it for AVX2 + FMA as well and picks the
// version at run time. The compiler never fuses a multiply and an add on its own, so every
// version gives the same bits.
#[multiversion(targets("x86_64+avx2+fma"))]
fn sgd_chunk<T: Float>(p: &mut [T], grad: &[T], k: &SgdConstants<T>) {
    for (p, &g) in p.iter_mut().zip(grad) {
        *p = *p - k.lr * effective_grad(g, *p, k.maximize, k.weight_decay);
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn sgd_momentum_chunk<T: Float>(p: &mut [T], grad: &[T], b: &mut [T], k: &SgdConstants<T>) {
    for ((p, b), &g) in p.iter_mut().zip(b.iter_mut()).zip(grad) {
        let g = effective_grad(g, *p, k.maximize, k.weight_decay);
        *b = if k.first_step {
            g
        } else {
            k.momentum * *b + k.keep * g
        };
        let step = if k.nesterov { g + k.momentum * *b } else { *b };
        *p = *p - k.lr * step;
    }
}

/// Hyperparameters of [`adagrad_step`]; `clr = lr / (1 + (t − 1)·lr_decay)` for step `t`.
#[derive(Clone, Copy, Debug)]
pub struct Adagrad {
    pub clr: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

/// Adagrad: `g += λθ; S += g²; θ −= clr · g / (√S + ε)`.
pub fn adagrad_step<T: Float>(
    param: &mut [T],
    grad: &[T],
    sum: &mut [T],
    h: Adagrad,
) -> Result<(), KernelError> {
    check_len("param", param, grad.len())?;
    check_buffers(grad, &[("sum", sum)])?;
    let k = (
        cst::<T>(h.clr),
        cst::<T>(h.eps),
        cst::<T>(h.weight_decay),
        h.maximize,
    );
    for_each_chunk_group(
        vec![param, sum],
        grad,
        CHUNK,
        parallel(grad.len()),
        |bufs, grad| {
            if let [p, s] = bufs {
                adagrad_chunk(p, grad, s, k)
            }
        },
    );
    Ok(())
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn adagrad_chunk<T: Float>(p: &mut [T], grad: &[T], sum: &mut [T], k: (T, T, T, bool)) {
    let (clr, eps, weight_decay, maximize) = k;
    for ((p, s), &g) in p.iter_mut().zip(sum.iter_mut()).zip(grad) {
        let g = effective_grad(g, *p, maximize, weight_decay);
        *s = *s + g * g;
        *p = *p - clr * (g / (s.sqrt() + eps));
    }
}

/// Hyperparameters of [`rmsprop_step`].
#[derive(Clone, Copy, Debug)]
pub struct RmsProp {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub maximize: bool,
}

/// RMSprop: `g += λθ; v = αv + (1−α)g²`; centered: `ḡ = ḡ + (1−α)(g − ḡ)`, `d = √(v − ḡ²) + ε`,
/// else `d = √v + ε`; with momentum `b = μb + g/d, θ −= lr·b`, else `θ −= lr·g/d`.
/// `grad_avg` is given when centered, `momentum_buffer` when `momentum > 0`.
pub fn rmsprop_step<T: Float>(
    param: &mut [T],
    grad: &[T],
    square_avg: &mut [T],
    grad_avg: Option<&mut [T]>,
    momentum_buffer: Option<&mut [T]>,
    h: RmsProp,
) -> Result<(), KernelError> {
    check_len("param", param, grad.len())?;
    check_buffers(grad, &[("square_avg", square_avg)])?;
    if h.momentum > 0.0 && momentum_buffer.is_none() {
        return Err(KernelError::value(
            "momentum_buffer",
            "is required when momentum > 0",
        ));
    }
    let centered = grad_avg.is_some();
    let mut writes = vec![param, square_avg];
    for (name, buffer) in [("grad_avg", grad_avg), ("momentum_buffer", momentum_buffer)] {
        if let Some(b) = buffer {
            check_len(name, b, grad.len())?;
            writes.push(b);
        }
    }
    let k = RmsPropConstants {
        lr: cst::<T>(h.lr),
        alpha: cst::<T>(h.alpha),
        one_minus_alpha: cst::<T>(1.0 - h.alpha),
        eps: cst::<T>(h.eps),
        weight_decay: cst::<T>(h.weight_decay),
        momentum: cst::<T>(h.momentum),
        maximize: h.maximize,
    };
    for_each_chunk_group(
        writes,
        grad,
        CHUNK,
        parallel(grad.len()),
        |bufs, grad| match bufs {
            [p, v] => rmsprop_chunk(p, grad, v, &k),
            [p, v, extra] if centered => rmsprop_centered_chunk(p, grad, v, extra, &k),
            [p, v, b] => rmsprop_momentum_chunk(p, grad, v, b, &k),
            [p, v, ga, b] => rmsprop_centered_momentum_chunk(p, grad, v, ga, b, &k),
            _ => {}
        },
    );
    Ok(())
}

struct RmsPropConstants<T> {
    lr: T,
    alpha: T,
    one_minus_alpha: T,
    eps: T,
    weight_decay: T,
    momentum: T,
    maximize: bool,
}

impl<T: Float> RmsPropConstants<T> {
    /// Updates the averages of one element; returns the gradient and the denominator.
    #[inline(always)]
    fn averages(&self, p: T, v: &mut T, grad_avg: Option<&mut T>, g: T) -> (T, T) {
        let g = effective_grad(g, p, self.maximize, self.weight_decay);
        *v = *v * self.alpha + self.one_minus_alpha * g * g;
        let avg = match grad_avg {
            Some(ga) => {
                *ga = *ga + self.one_minus_alpha * (g - *ga);
                (*v - *ga * *ga).sqrt() + self.eps
            }
            None => v.sqrt() + self.eps,
        };
        (g, avg)
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn rmsprop_chunk<T: Float>(p: &mut [T], grad: &[T], v: &mut [T], k: &RmsPropConstants<T>) {
    for ((p, v), &g) in p.iter_mut().zip(v.iter_mut()).zip(grad) {
        let (g, avg) = k.averages(*p, v, None, g);
        *p = *p - k.lr * (g / avg);
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn rmsprop_centered_chunk<T: Float>(
    p: &mut [T],
    grad: &[T],
    v: &mut [T],
    ga: &mut [T],
    k: &RmsPropConstants<T>,
) {
    for (((p, v), ga), &g) in p.iter_mut().zip(v.iter_mut()).zip(ga.iter_mut()).zip(grad) {
        let (g, avg) = k.averages(*p, v, Some(ga), g);
        *p = *p - k.lr * (g / avg);
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn rmsprop_momentum_chunk<T: Float>(
    p: &mut [T],
    grad: &[T],
    v: &mut [T],
    b: &mut [T],
    k: &RmsPropConstants<T>,
) {
    for (((p, v), b), &g) in p.iter_mut().zip(v.iter_mut()).zip(b.iter_mut()).zip(grad) {
        let (g, avg) = k.averages(*p, v, None, g);
        *b = *b * k.momentum + g / avg;
        *p = *p - k.lr * *b;
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn rmsprop_centered_momentum_chunk<T: Float>(
    p: &mut [T],
    grad: &[T],
    v: &mut [T],
    ga: &mut [T],
    b: &mut [T],
    k: &RmsPropConstants<T>,
) {
    let rows = p
        .iter_mut()
        .zip(v.iter_mut())
        .zip(ga.iter_mut())
        .zip(b.iter_mut());
    for ((((p, v), ga), b), &g) in rows.zip(grad) {
        let (g, avg) = k.averages(*p, v, Some(ga), g);
        *b = *b * k.momentum + g / avg;
        *p = *p - k.lr * *b;
    }
}

/// Hyperparameters of [`adam_step`] for step `t`: `step_size = lr / (1 − β1^t)` and
/// `bias_correction2_sqrt = √(1 − β2^t)`.
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW: decay the weights (`θ −= lr·λ·θ`) instead of adding `λθ` to the gradient.
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
    pub step_size: f64,
    pub bias_correction2_sqrt: f64,
}

/// Adam / AdamW: `m = m + (1−β1)(g − m); v = β2·v + (1−β2)g²`; with AMSGrad `v̂ = max(v̂, v)`;
/// `θ −= step_size · m / (√v / √(1 − β2^t) + ε)`. `max_exp_avg_sq` is given for AMSGrad.
pub fn adam_step<T: Float>(
    param: &mut [T],
    grad: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    max_exp_avg_sq: Option<&mut [T]>,
    h: Adam,
) -> Result<(), KernelError> {
    check_len("param", param, grad.len())?;
    check_buffers(grad, &[("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)])?;
    let mut writes = vec![param, exp_avg, exp_avg_sq];
    if let Some(b) = max_exp_avg_sq {
        check_len("max_exp_avg_sq", b, grad.len())?;
        writes.push(b);
    }
    let k = AdamConstants::new(h);
    for_each_chunk_group(
        writes,
        grad,
        CHUNK,
        parallel(grad.len()),
        |bufs, grad| match bufs {
            [p, m, v] => adam_chunk(p, grad, m, v, &k),
            [p, m, v, vmax] => amsgrad_chunk(p, grad, m, v, vmax, &k),
            _ => {}
        },
    );
    Ok(())
}

/// The per-step constants of Adam, converted to the element type once.
struct AdamConstants<T> {
    coupled_wd: T,
    decay: T,
    one_minus_b1: T,
    beta2: T,
    one_minus_b2: T,
    eps: T,
    step_size: T,
    /// `1/√(1 − β2^t)`: a multiply in the loop instead of a second divide.
    inv_bc2_sqrt: T,
    decoupled: bool,
    maximize: bool,
}

impl<T: Float> AdamConstants<T> {
    fn new(h: Adam) -> Self {
        let decoupled = h.decoupled_weight_decay;
        AdamConstants {
            coupled_wd: cst::<T>(if decoupled { 0.0 } else { h.weight_decay }),
            decay: cst::<T>(
                1.0 - if decoupled {
                    h.lr * h.weight_decay
                } else {
                    0.0
                },
            ),
            one_minus_b1: cst::<T>(1.0 - h.beta1),
            beta2: cst::<T>(h.beta2),
            one_minus_b2: cst::<T>(1.0 - h.beta2),
            eps: cst::<T>(h.eps),
            step_size: cst::<T>(h.step_size),
            inv_bc2_sqrt: cst::<T>(1.0 / h.bias_correction2_sqrt),
            decoupled,
            maximize: h.maximize,
        }
    }

    /// Updates `p`, `m`, `v` for one element; returns the gradient used.
    #[inline(always)]
    fn moments(&self, p: &mut T, m: &mut T, v: &mut T, g: T) {
        let g = effective_grad(g, *p, self.maximize, self.coupled_wd);
        if self.decoupled {
            *p = *p * self.decay;
        }
        *m = *m + self.one_minus_b1 * (g - *m);
        *v = *v * self.beta2 + self.one_minus_b2 * g * g;
    }

    #[inline(always)]
    fn apply(&self, p: &mut T, m: T, v: T) {
        *p = *p - self.step_size * (m / (v.sqrt() * self.inv_bc2_sqrt + self.eps));
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn adam_chunk<T: Float>(p: &mut [T], grad: &[T], m: &mut [T], v: &mut [T], k: &AdamConstants<T>) {
    for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grad) {
        k.moments(p, m, v, g);
        k.apply(p, *m, *v);
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn amsgrad_chunk<T: Float>(
    p: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
    k: &AdamConstants<T>,
) {
    let rows = p
        .iter_mut()
        .zip(m.iter_mut())
        .zip(v.iter_mut())
        .zip(vmax.iter_mut());
    for ((((p, m), v), vmax), &g) in rows.zip(grad) {
        k.moments(p, m, v, g);
        *vmax = vmax.max(*v);
        k.apply(p, *m, *vmax);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_each_weight_by_lr() {
        // With bias correction, the first step is lr · g/|g| (up to ε).
        let (mut p, g) = (vec![1.0f64, -2.0], vec![0.5, -3.0]);
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        let h = Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-12,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
            step_size: 0.1 / (1.0 - 0.9),
            bias_correction2_sqrt: (1.0f64 - 0.999).sqrt(),
        };
        adam_step(&mut p, &g, &mut m, &mut v, None, h).unwrap();
        assert!((p[0] - 0.9).abs() < 1e-9 && (p[1] + 1.9).abs() < 1e-9);
    }

    #[test]
    fn momentum_without_buffer_is_an_error() {
        let h = Sgd {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            maximize: false,
        };
        assert!(sgd_step(&mut [1.0f32], &[1.0], None, true, h).is_err());
    }
}
