//! Fused optimizer updates: one pass over each parameter that reads the parameter, its gradient
//! and its state buffers and writes them in place, with no temporaries. The formulas are
//! PyTorch's (`torch.optim`, single-tensor path), so iterates match it to rounding.
//!
//! Step-dependent scalars (bias corrections, decayed rates) are computed once per step by the
//! caller and passed in; the loops see only constants.

use crate::error::check_len;
use crate::parallel::{for_each_chunk_group, worth_parallel};
use crate::scalar::cst;
use crate::{Float, KernelError};

/// Elements per task of an update.
const CHUNK: usize = 16384;

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
    let (lr, mu, keep, wd) = (
        cst::<T>(h.lr),
        cst::<T>(h.momentum),
        cst::<T>(1.0 - h.dampening),
        cst::<T>(h.weight_decay),
    );
    let parallel = worth_parallel(grad.len());
    match momentum_buffer {
        None if h.momentum != 0.0 => Err(KernelError::value(
            "momentum_buffer",
            "is required when momentum != 0",
        )),
        None => {
            for_each_chunk_group(vec![param], grad, CHUNK, parallel, |bufs, grad| {
                let [p] = bufs else { return };
                for (p, &g) in p.iter_mut().zip(grad) {
                    *p = *p - lr * effective_grad(g, *p, h.maximize, wd);
                }
            });
            Ok(())
        }
        Some(buffer) => {
            check_buffers(grad, &[("momentum_buffer", buffer)])?;
            for_each_chunk_group(vec![param, buffer], grad, CHUNK, parallel, |bufs, grad| {
                let [p, b] = bufs else { return };
                for ((p, b), &g) in p.iter_mut().zip(b.iter_mut()).zip(grad) {
                    let g = effective_grad(g, *p, h.maximize, wd);
                    *b = if first_step { g } else { mu * *b + keep * g };
                    let step = if h.nesterov { g + mu * *b } else { *b };
                    *p = *p - lr * step;
                }
            });
            Ok(())
        }
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
    let (clr, eps, wd) = (cst::<T>(h.clr), cst::<T>(h.eps), cst::<T>(h.weight_decay));
    for_each_chunk_group(
        vec![param, sum],
        grad,
        CHUNK,
        worth_parallel(grad.len()),
        |bufs, grad| {
            let [p, s] = bufs else { return };
            for ((p, s), &g) in p.iter_mut().zip(s.iter_mut()).zip(grad) {
                let g = effective_grad(g, *p, h.maximize, wd);
                *s = *s + g * g;
                *p = *p - clr * (g / (s.sqrt() + eps));
            }
        },
    );
    Ok(())
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
    let (lr, alpha, eps, wd, mu) = (
        cst::<T>(h.lr),
        cst::<T>(h.alpha),
        cst::<T>(h.eps),
        cst::<T>(h.weight_decay),
        cst::<T>(h.momentum),
    );
    let one_minus_alpha = cst::<T>(1.0 - h.alpha);
    let rule = |p: &mut T, v: &mut T, ga: Option<&mut T>, b: Option<&mut T>, g: T| {
        let g = effective_grad(g, *p, h.maximize, wd);
        *v = *v * alpha + one_minus_alpha * g * g;
        let avg = match ga {
            Some(ga) => {
                *ga = *ga + one_minus_alpha * (g - *ga);
                (*v - *ga * *ga).sqrt() + eps
            }
            None => v.sqrt() + eps,
        };
        match b {
            Some(b) => {
                *b = *b * mu + g / avg;
                *p = *p - lr * *b;
            }
            None => *p = *p - lr * (g / avg),
        }
    };
    for_each_chunk_group(
        writes,
        grad,
        CHUNK,
        worth_parallel(grad.len()),
        |bufs, grad| match bufs {
            [p, v] => {
                for ((p, v), &g) in p.iter_mut().zip(v.iter_mut()).zip(grad) {
                    rule(p, v, None, None, g);
                }
            }
            [p, v, extra] => {
                for (((p, v), e), &g) in p
                    .iter_mut()
                    .zip(v.iter_mut())
                    .zip(extra.iter_mut())
                    .zip(grad)
                {
                    if centered {
                        rule(p, v, Some(e), None, g);
                    } else {
                        rule(p, v, None, Some(e), g);
                    }
                }
            }
            [p, v, ga, b] => {
                let rows = p
                    .iter_mut()
                    .zip(v.iter_mut())
                    .zip(ga.iter_mut())
                    .zip(b.iter_mut());
                for ((((p, v), ga), b), &g) in rows.zip(grad) {
                    rule(p, v, Some(ga), Some(b), g);
                }
            }
            _ => {}
        },
    );
    Ok(())
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
    let coupled_wd = cst::<T>(if h.decoupled_weight_decay {
        0.0
    } else {
        h.weight_decay
    });
    let decay = cst::<T>(
        1.0 - if h.decoupled_weight_decay {
            h.lr * h.weight_decay
        } else {
            0.0
        },
    );
    let (one_minus_b1, beta2, one_minus_b2) = (
        cst::<T>(1.0 - h.beta1),
        cst::<T>(h.beta2),
        cst::<T>(1.0 - h.beta2),
    );
    let (eps, step_size, bc2_sqrt) = (
        cst::<T>(h.eps),
        cst::<T>(h.step_size),
        cst::<T>(h.bias_correction2_sqrt),
    );
    let moments = move |p: &mut T, m: &mut T, v: &mut T, g: T| {
        let g = effective_grad(g, *p, h.maximize, coupled_wd);
        if h.decoupled_weight_decay {
            *p = *p * decay;
        }
        *m = *m + one_minus_b1 * (g - *m);
        *v = *v * beta2 + one_minus_b2 * g * g;
    };
    let apply = move |p: &mut T, m: T, v: T| {
        *p = *p - step_size * (m / (v.sqrt() / bc2_sqrt + eps));
    };
    for_each_chunk_group(
        writes,
        grad,
        CHUNK,
        worth_parallel(grad.len()),
        |bufs, grad| match bufs {
            [p, m, v] => {
                for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grad)
                {
                    moments(p, m, v, g);
                    apply(p, *m, *v);
                }
            }
            [p, m, v, vmax] => {
                let rows = p
                    .iter_mut()
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                    .zip(vmax.iter_mut());
                for ((((p, m), v), vmax), &g) in rows.zip(grad) {
                    moments(p, m, v, g);
                    *vmax = vmax.max(*v);
                    apply(p, *m, *vmax);
                }
            }
            _ => {}
        },
    );
    Ok(())
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
