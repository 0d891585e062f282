//! Elementwise activations and their derivatives.

use crate::error::check_len;
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::scalar::cst;
use crate::{Float, KernelError};

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
}

impl Activation {
    #[inline(always)]
    fn value<T: Float>(self, x: T) -> T {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(T::zero()),
            Activation::LeakyRelu { negative_slope } => {
                if x > T::zero() {
                    x
                } else {
                    x * cst::<T>(negative_slope)
                }
            }
            Activation::Sigmoid => T::one() / (T::one() + (-x).exp()),
            Activation::HardSigmoid => {
                ((x + cst::<T>(3.0)).max(T::zero()).min(cst::<T>(6.0))) / cst::<T>(6.0)
            }
            Activation::Tanh => x.tanh(),
        }
    }

    /// `dL/dx` from the input `x`, the output `y` and `dL/dy`. The derivative at a kink is the
    /// one PyTorch uses (ReLU'(0) = 0; Hardsigmoid' is 1/6 on the open interval (-3, 3)).
    #[inline(always)]
    fn derivative<T: Float>(self, x: T, y: T, dy: T) -> T {
        match self {
            Activation::Identity => dy,
            Activation::Relu => {
                if x > T::zero() {
                    dy
                } else {
                    T::zero()
                }
            }
            Activation::LeakyRelu { negative_slope } => {
                if x > T::zero() {
                    dy
                } else {
                    dy * cst::<T>(negative_slope)
                }
            }
            Activation::Sigmoid => dy * y * (T::one() - y),
            Activation::HardSigmoid => {
                if x > cst::<T>(-3.0) && x < cst::<T>(3.0) {
                    dy / cst::<T>(6.0)
                } else {
                    T::zero()
                }
            }
            Activation::Tanh => dy * (T::one() - y * y),
        }
    }
}

/// `out = f(x)` elementwise.
pub fn activation_forward<T: Float>(
    activation: Activation,
    x: &[T],
    out: &mut [T],
) -> Result<(), KernelError> {
    check_len("out", out, x.len())?;
    for_each_chunk_mut(out, CHUNK, worth_parallel(x.len()), |i, chunk| {
        let (start, end) = (i * CHUNK, i * CHUNK + chunk.len());
        for (o, &v) in chunk.iter_mut().zip(&x[start..end]) {
            *o = activation.value(v);
        }
    });
    Ok(())
}

/// `grad_input = f'(x) · grad_output` elementwise, given the forward input `x` and output `y`.
pub fn activation_backward<T: Float>(
    activation: Activation,
    x: &[T],
    y: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
) -> Result<(), KernelError> {
    check_len("output", y, x.len())?;
    check_len("grad_output", grad_output, x.len())?;
    check_len("grad_input", grad_input, x.len())?;
    for_each_chunk_mut(grad_input, CHUNK, worth_parallel(x.len()), |i, chunk| {
        let start = i * CHUNK;
        let end = start + chunk.len();
        let inputs = x[start..end]
            .iter()
            .zip(&y[start..end])
            .zip(&grad_output[start..end]);
        for (g, ((&xv, &yv), &dy)) in chunk.iter_mut().zip(inputs) {
            *g = activation.derivative(xv, yv, dy);
        }
    });
    Ok(())
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
        activation_forward(
            Activation::LeakyRelu {
                negative_slope: 0.1,
            },
            &x,
            &mut y,
        )
        .unwrap();
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
