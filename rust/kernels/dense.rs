//! The dense layer: forward and backward as matrix products ([`crate::matmul`]) plus the bias.

use crate::error::{check_len, checked_product, dims};
use crate::matmul::matmul;
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::reduce::column_sums;
use crate::{Float, KernelError};
use faer::MatRef;

/// Shapes of a dense layer: `x` is `batch × in_features`, `weight` is `out_features × in_features`
/// (PyTorch's layout).
#[derive(Clone, Copy, Debug)]
pub struct DenseShape {
    pub batch: usize,
    pub in_features: usize,
    pub out_features: usize,
}

impl DenseShape {
    /// The layer's shape from those of `x` (batch, in) and `weight` (out, in).
    pub fn of(x: &[usize], weight: &[usize]) -> Result<DenseShape, KernelError> {
        let [batch, in_features] = dims::<2>("x", x)?;
        let [out_features, weight_in] = dims::<2>("weight", weight)?;
        if weight_in != in_features {
            let expected = format!("shape (out_features, {in_features}) to match x's {in_features} features");
            return Err(KernelError::shape("weight", expected, format!("({out_features}, {weight_in})")));
        }
        Ok(DenseShape { batch, in_features, out_features })
    }
}

/// Forward pass of a dense layer: `out = x · weightᵀ + bias`. Zero sizes: no rows or no
/// output features give an empty `out`; no input features give `out = bias` (or zeros).
pub fn dense_forward<T: Float>(
    x: &[T], weight: &[T], bias: Option<&[T]>, out: &mut [T], shape: DenseShape,
) -> Result<(), KernelError> {
    let DenseShape { batch, in_features, out_features } = shape;
    check_len("x", x, checked_product("x", batch, in_features)?)?;
    check_len("weight", weight, checked_product("weight", out_features, in_features)?)?;
    check_len("out", out, checked_product("out", batch, out_features)?)?;
    if let Some(b) = bias {
        check_len("bias", b, out_features)?;
    }
    if out.is_empty() {
        return Ok(());
    }
    if let Some(b) = bias {
        let rows_per_chunk = (4096 / out_features.max(1)).max(1);
        let parallel = worth_parallel(out.len());
        for_each_chunk_mut(out, rows_per_chunk * out_features, parallel, |_, rows| {
            for row in rows.chunks_exact_mut(out_features) {
                row.copy_from_slice(b);
            }
        });
    }
    matmul(
        MatRef::from_row_major_slice(x, batch, in_features),
        MatRef::from_row_major_slice(weight, out_features, in_features).transpose(),
        out,
        bias.is_some(),
    )
}

/// Gradients a dense layer's backward pass writes; `None` skips that product.
pub struct DenseGrads<'a, T> {
    /// `out_features × in_features`: `(+)= grad_outᵀ · x`.
    pub weight: Option<&'a mut [T]>,
    /// `out_features`: `(+)= Σ_rows grad_out`.
    pub bias: Option<&'a mut [T]>,
    /// Whether the weight and bias gradients accumulate (PyTorch's semantics) or are
    /// overwritten (right after the gradients were zeroed, saving a pass).
    pub accumulate: bool,
    /// `batch × in_features`, overwritten: `= grad_out · weight`.
    pub input: Option<&'a mut [T]>,
}

/// Backward pass of a dense layer. Parameter gradients accumulate (as in PyTorch) unless
/// `grads.accumulate` is false; the input gradient is overwritten. Zero sizes: a batch of no
/// rows adds nothing to the parameter gradients (or zeroes them, when not accumulating).
pub fn dense_backward<T: Float>(
    x: &[T], weight: &[T], grad_out: &[T], grads: DenseGrads<'_, T>, shape: DenseShape,
) -> Result<(), KernelError> {
    let DenseShape { batch, in_features, out_features } = shape;
    check_len("x", x, checked_product("x", batch, in_features)?)?;
    check_len("weight", weight, checked_product("weight", out_features, in_features)?)?;
    check_len("grad_output", grad_out, checked_product("grad_output", batch, out_features)?)?;
    if let Some(gw) = &grads.weight {
        check_len("grad_weight", gw, out_features * in_features)?;
    }
    if let Some(gb) = &grads.bias {
        check_len("grad_bias", gb, out_features)?;
    }
    if let Some(gx) = &grads.input {
        check_len("grad_input", gx, batch * in_features)?;
    }
    let dy = MatRef::from_row_major_slice(grad_out, batch, out_features);
    if let Some(gw) = grads.weight {
        let x = MatRef::from_row_major_slice(x, batch, in_features);
        matmul(dy.transpose(), x, gw, grads.accumulate)?;
    }
    if let Some(gb) = grads.bias {
        column_sums(grad_out, batch, out_features, gb, grads.accumulate)?;
    }
    if let Some(gx) = grads.input {
        let w = MatRef::from_row_major_slice(weight, out_features, in_features);
        matmul(dy, w, gx, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::tests::{data, naive};

    #[test]
    fn dense_forward_and_backward_match_naive_loops() {
        let shape = DenseShape { batch: 5, in_features: 7, out_features: 3 };
        let (x, w, b, dy) = (data(35, 0.0), data(21, 1.0), data(3, 2.0), data(15, 3.0));
        let mut y = vec![0.0; 15];
        dense_forward(&x, &w, Some(&b), &mut y, shape).unwrap();
        let mut wt = vec![0.0; 21];
        for o in 0..3 {
            for i in 0..7 {
                wt[i * 3 + o] = w[o * 7 + i];
            }
        }
        let expected = naive(&x, &wt, 5, 7, 3);
        for r in 0..5 {
            for c in 0..3 {
                assert!((y[r * 3 + c] - expected[r * 3 + c] - b[c]).abs() < 1e-12);
            }
        }
        let (mut gw, mut gb, mut gx) = (vec![1.0; 21], vec![1.0; 3], vec![9.0; 35]);
        let grads =
            DenseGrads { weight: Some(&mut gw), bias: Some(&mut gb), input: Some(&mut gx), accumulate: true };
        dense_backward(&x, &w, &dy, grads, shape).unwrap();
        let expected_gx = naive(&dy, &w, 5, 3, 7);
        for (a, e) in gx.iter().zip(&expected_gx) {
            assert!((a - e).abs() < 1e-12);
        }
        for o in 0..3 {
            let sum: f64 = (0..5).map(|r| dy[r * 3 + o]).sum();
            assert!((gb[o] - 1.0 - sum).abs() < 1e-12);
            for i in 0..7 {
                let e: f64 = (0..5).map(|r| dy[r * 3 + o] * x[r * 7 + i]).sum();
                assert!((gw[o * 7 + i] - 1.0 - e).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn wrong_lengths_are_errors_not_panics() {
        let shape = DenseShape { batch: 2, in_features: 3, out_features: 4 };
        let mut out = vec![0.0f32; 8];
        let err = dense_forward(&[0.0f32; 5], &[0.0; 12], None, &mut out, shape).unwrap_err();
        assert!(err.to_string().contains("x must have 6 elements"));
    }

    #[test]
    fn zero_sizes_give_defined_results() {
        let shape = |batch, in_features, out_features| DenseShape { batch, in_features, out_features };
        // No input features: out = bias.
        let mut out = [9.0f64; 6];
        dense_forward(&[], &[], Some(&[1.0, 2.0, 3.0]), &mut out, shape(2, 0, 3)).unwrap();
        assert_eq!(out, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        dense_forward(&[], &[], None, &mut out, shape(2, 0, 3)).unwrap();
        assert_eq!(out, [0.0; 6]);
        // No rows, no output features: nothing to write.
        dense_forward(&[], &[1.0f64; 6], Some(&[1.0, 2.0]), &mut [], shape(0, 3, 2)).unwrap();
        dense_forward(&[1.0f64; 6], &[], Some(&[]), &mut [], shape(2, 3, 0)).unwrap();
        // A batch of no rows adds nothing (or zeroes when not accumulating).
        for accumulate in [true, false] {
            let (mut gw, mut gb) = ([5.0f64; 6], [5.0; 2]);
            let grads =
                DenseGrads { weight: Some(&mut gw), bias: Some(&mut gb), input: Some(&mut []), accumulate };
            dense_backward(&[], &[1.0; 6], &[], grads, shape(0, 3, 2)).unwrap();
            let expected = if accumulate { 5.0 } else { 0.0 };
            assert!(gw.iter().chain(&gb).all(|&v| v == expected));
        }
        let grads = DenseGrads {
            weight: Some(&mut []),
            bias: Some(&mut []),
            input: Some(&mut [7.0; 6]),
            accumulate: true,
        };
        dense_backward(&[1.0; 6], &[], &[], grads, shape(2, 3, 0)).unwrap();
        assert!(dense_forward(&[0.0f64; 2], &[], None, &mut [], shape(usize::MAX, 2, 0)).is_err());
    }
}
