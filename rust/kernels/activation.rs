//! Elementwise activations and their derivatives.

use crate::error::check_len;
use crate::exp::{exp_in, tanh_in};
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::scalar::cst;
use crate::{Float, KernelError};
use multiversion::multiversion;

/// Elements per task of an elementwise loop.
const CHUNK: usize = 8192;

/// The activation functions of the course (and a few PyTorch users expect).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// `x` for `x > 0`, `negative_slope · x` otherwise.
    LeakyRelu {
        negative_slope: f64,
    },
    Sigmoid,
    /// `relu6(x + 3) / 6`, as PyTorch's `Hardsigmoid`.
    HardSigmoid,
    Tanh,
    /// `exp(x)`: not a layer of the course, but the vectorized exponential the losses use,
    /// reachable from Python for its tests.
    Exp,
}

impl Activation {
    /// The activation named `kind` ("identity", "relu", "leaky_relu", "sigmoid", "hard_sigmoid",
    /// "tanh", "exp"); `negative_slope` is leaky ReLU's.
    pub fn parse(kind: &str, negative_slope: f64) -> Result<Activation, KernelError> {
        Ok(match kind {
            "identity" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu { negative_slope },
            "sigmoid" => Activation::Sigmoid,
            "hard_sigmoid" => Activation::HardSigmoid,
            "tanh" => Activation::Tanh,
            "exp" => Activation::Exp,
            other => {
                return Err(KernelError::Message(format!(
                "kind must be one of identity, relu, leaky_relu, sigmoid, hard_sigmoid, tanh, exp; got {other:?}"
            )))
            }
        })
    }
}

/// `out = f(x)` elementwise.
pub fn activation_forward<T: Float>(
    activation: Activation, x: &[T], out: &mut [T],
) -> Result<(), KernelError> {
    check_len("out", out, x.len())?;
    for_each_chunk_mut(out, CHUNK, worth_parallel(x.len()), |i, chunk| {
        let start = i * CHUNK;
        forward_chunk(activation, &x[start..start + chunk.len()], chunk);
    });
    Ok(())
}

// The match on the activation sits outside each loop, so every loop is a plain, branch-free
// pass that vectorizes (a per-element branch on random signs costs a misprediction each);
// `multiversion` adds AVX-512 and AVX2 builds chosen at run time (the exponential of the
// sigmoid is compute-bound: wider vectors and fused multiply-adds pay; the AVX-512 target names
// FMA, which AVX-512 implies, so that `target_cfg_f!` sees it).
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn forward_chunk<T: Float>(activation: Activation, x: &[T], out: &mut [T]) {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    let n = out.len();
    let x = &x[..n];
    match activation {
        Activation::Identity => out.copy_from_slice(x),
        Activation::Relu => (0..n).for_each(|i| out[i] = if x[i] > T::zero() { x[i] } else { T::zero() }),
        Activation::LeakyRelu { negative_slope } => {
            let slope = cst::<T>(negative_slope);
            (0..n).for_each(|i| out[i] = if x[i] > T::zero() { x[i] } else { x[i] * slope })
        }
        Activation::HardSigmoid => {
            let (three, six) = (cst::<T>(3.0), cst::<T>(6.0));
            (0..n).for_each(|i| out[i] = (x[i] + three).max(T::zero()).min(six) / six)
        }
        Activation::Sigmoid => (0..n).for_each(|i| out[i] = T::one() / (T::one() + exp_in::<T, FMA>(-x[i]))),
        Activation::Exp => (0..n).for_each(|i| out[i] = exp_in::<T, FMA>(x[i])),
        Activation::Tanh => (0..n).for_each(|i| out[i] = tanh_in::<T, FMA>(x[i])),
    }
}

/// `grad_input = f'(x) · grad_output` elementwise, given the forward input `x` and output `y`.
pub fn activation_backward<T: Float>(
    activation: Activation, x: &[T], y: &[T], grad_output: &[T], grad_input: &mut [T],
) -> Result<(), KernelError> {
    check_len("output", y, x.len())?;
    check_len("grad_output", grad_output, x.len())?;
    check_len("grad_input", grad_input, x.len())?;
    for_each_chunk_mut(grad_input, CHUNK, worth_parallel(x.len()), |i, chunk| {
        let range = i * CHUNK..i * CHUNK + chunk.len();
        backward_chunk(activation, &x[range.clone()], &y[range.clone()], &grad_output[range], chunk);
    });
    Ok(())
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn backward_chunk<T: Float>(activation: Activation, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
    let n = dx.len();
    let (x, y, dy) = (&x[..n], &y[..n], &dy[..n]);
    match activation {
        Activation::Identity => dx.copy_from_slice(dy),
        Activation::Relu => (0..n).for_each(|i| dx[i] = if x[i] > T::zero() { dy[i] } else { T::zero() }),
        Activation::LeakyRelu { negative_slope } => {
            let slope = cst::<T>(negative_slope);
            (0..n).for_each(|i| dx[i] = if x[i] > T::zero() { dy[i] } else { dy[i] * slope })
        }
        Activation::Sigmoid => (0..n).for_each(|i| dx[i] = dy[i] * y[i] * (T::one() - y[i])),
        Activation::Tanh => (0..n).for_each(|i| dx[i] = dy[i] * (T::one() - y[i] * y[i])),
        Activation::Exp => (0..n).for_each(|i| dx[i] = dy[i] * y[i]),
        Activation::HardSigmoid => {
            let (lo, hi, sixth) = (cst::<T>(-3.0), cst::<T>(3.0), cst::<T>(1.0 / 6.0));
            (0..n).for_each(|i| dx[i] = if x[i] > lo && x[i] < hi { dy[i] * sixth } else { T::zero() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_at_known_points() {
        let x = [-4.0f64, -1.0, 0.0, 2.0];
        let mut y = [0.0; 4];
        activation_forward(Activation::HardSigmoid, &x, &mut y).unwrap();
        assert_eq!(y, [0.0, 1.0 / 3.0, 0.5, 5.0 / 6.0]);
        activation_forward(Activation::LeakyRelu { negative_slope: 0.1 }, &x, &mut y).unwrap();
        assert_eq!(y, [-0.4, -0.1, 0.0, 2.0]);
        let mut g = [0.0; 4];
        activation_backward(Activation::Relu, &x, &y, &[1.0; 4], &mut g).unwrap();
        assert_eq!(g, [0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn mismatched_lengths_are_errors() {
        let mut y = [0.0f32; 3];
        assert!(activation_forward(Activation::Relu, &[0.0f32; 4], &mut y).is_err());
    }
}
