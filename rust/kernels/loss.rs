//! Losses, each returning the mean loss and writing the gradient of its input in one pass, plus
//! the softmax helpers. Loss sums are accumulated in f64 over fixed chunks (thread-count
//! independent); every loss is a mean, as PyTorch's `reduction="mean"`.

use crate::error::{check_len, checked_product};
use crate::parallel::{for_each_chunk_mut, sum_over_chunks_mut, worth_parallel};
use crate::scalar::cst;
use crate::{Float, KernelError};

/// Elements per task of an elementwise loss.
const CHUNK: usize = 8192;
/// Rows per task of a row-wise (softmax) loss.
const ROWS_PER_CHUNK: usize = 64;

fn check_finite<T: Float>(name: &'static str, values: &[T]) -> Result<(), KernelError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => {
            Err(KernelError::value(name, format!("must be finite, got {:?} at flat index {i}", values[i])))
        }
        None => Ok(()),
    }
}

fn check_same_nonempty<T>(input: &[T], target: &[T], grad: &[T]) -> Result<(), KernelError> {
    if input.is_empty() {
        return Err(KernelError::shape("input", "at least one element", "0 elements"));
    }
    check_len("target", target, input.len())?;
    check_len("grad_input", grad, input.len())
}

/// A mean over all elements of `term(input, target)`, writing `grad_term(...)/n` into `grad`.
fn elementwise_mean_loss<T: Float>(
    input: &[T], target: &[T], grad: &mut [T], term: impl Fn(T, T, T) -> (T, T) + Sync + Send,
) -> Result<f64, KernelError> {
    check_same_nonempty(input, target, grad)?;
    check_finite("target", target)?;
    let n = input.len();
    let inv_n = cst::<T>(1.0 / n as f64);
    let sum = sum_over_chunks_mut(grad, CHUNK, worth_parallel(n), |i, g| {
        let (start, end) = (i * CHUNK, i * CHUNK + g.len());
        let pairs = input[start..end].iter().zip(&target[start..end]);
        let mut acc = 0.0f64;
        for (gi, (&x, &t)) in g.iter_mut().zip(pairs) {
            let (loss, grad) = term(x, t, inv_n);
            *gi = grad;
            acc += loss.as_f64();
        }
        acc
    });
    Ok(sum / n as f64)
}

/// Mean squared error `mean((input − target)²)`; gradient `2·(input − target)/n`.
pub fn mse_loss<T: Float>(input: &[T], target: &[T], grad: &mut [T]) -> Result<f64, KernelError> {
    elementwise_mean_loss(input, target, grad, |x, t, inv_n| {
        let d = x - t;
        (d * d, cst::<T>(2.0) * d * inv_n)
    })
}

/// Mean absolute error `mean(|input − target|)`; gradient `sign(input − target)/n`, 0 at a tie.
pub fn l1_loss<T: Float>(input: &[T], target: &[T], grad: &mut [T]) -> Result<f64, KernelError> {
    elementwise_mean_loss(input, target, grad, |x, t, inv_n| {
        let d = x - t;
        let sign = if d > T::zero() {
            T::one()
        } else if d < T::zero() {
            -T::one()
        } else {
            d * T::zero()
        };
        (d.abs(), sign * inv_n)
    })
}

/// Binary cross-entropy on logits with the sigmoid fused in:
/// `mean(max(z, 0) − z·t + log(1 + exp(−|z|)))`, gradient `(σ(z) − t)/n`. Stable for any `z`.
pub fn binary_cross_entropy_with_logits<T: Float>(
    logits: &[T], target: &[T], grad: &mut [T],
) -> Result<f64, KernelError> {
    elementwise_mean_loss(logits, target, grad, |z, t, inv_n| {
        let e = (-z.abs()).exp();
        let sigmoid = if z >= T::zero() { T::one() / (T::one() + e) } else { e / (T::one() + e) };
        (z.max(T::zero()) - z * t + e.ln_1p(), (sigmoid - t) * inv_n)
    })
}

/// Options of the softmax cross-entropy, as PyTorch's `CrossEntropyLoss(weight, label_smoothing)`.
#[derive(Clone, Copy)]
pub struct CrossEntropyOptions<'a, T> {
    /// One weight per class (non-negative), or `None` for all ones.
    pub class_weights: Option<&'a [T]>,
    /// ε in `(1 − ε)·target + ε/C`, in `[0, 1]`.
    pub label_smoothing: f64,
}

impl<T: Float> CrossEntropyOptions<'_, T> {
    fn check(&self, classes: usize) -> Result<(), KernelError> {
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(KernelError::value(
                "label_smoothing",
                format!("must be in [0, 1], got {}", self.label_smoothing),
            ));
        }
        if let Some(w) = self.class_weights {
            check_len("weight", w, classes)?;
            if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= T::zero())) {
                return Err(KernelError::value(
                    "weight",
                    format!("class weights must be finite and >= 0, got {:?} at index {i}", w[i]),
                ));
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn weight(&self, class: usize) -> T {
        self.class_weights.map_or(T::one(), |w| w[class])
    }
}

/// Row shapes of the softmax losses: `rows × classes` logits.
fn check_logits<T>(logits: &[T], rows: usize, classes: usize, grad: &[T]) -> Result<(), KernelError> {
    if classes == 0 || rows == 0 {
        return Err(KernelError::shape(
            "input",
            "at least one row and one class",
            format!("{rows} rows × {classes} classes"),
        ));
    }
    let len = checked_product("input", rows, classes)?;
    check_len("input", logits, len)?;
    check_len("grad_input", grad, len)
}

/// One row of softmax cross-entropy against coefficients `q_c` (the weighted, smoothed target):
/// returns `Σ_c q_c·(lse − z_c)` and writes `scale·(Q·p_c − q_c)` with `Q = Σ_c q_c` into `grad`.
#[inline]
fn cross_entropy_row<T: Float>(z: &[T], grad: &mut [T], q: impl Fn(usize) -> T, scale: T) -> f64 {
    let max = z.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
    let mut sum_exp = T::zero();
    for (g, &v) in grad.iter_mut().zip(z) {
        let e = (v - max).exp();
        *g = e;
        sum_exp += e;
    }
    let log_sum = sum_exp.ln();
    let (mut total_q, mut loss) = (T::zero(), T::zero());
    for (c, &v) in z.iter().enumerate() {
        let qc = q(c);
        total_q += qc;
        loss += qc * ((max - v) + log_sum);
    }
    let inv_sum = T::one() / sum_exp;
    for (c, g) in grad.iter_mut().enumerate() {
        *g = scale * (total_q * *g * inv_sum - q(c));
    }
    loss.as_f64()
}

/// Softmax cross-entropy on `rows × classes` logits with integer class labels. The mean is over
/// the labels' class weights (`Σ_i w[y_i]`), as in PyTorch.
pub fn cross_entropy_labels<T: Float>(
    logits: &[T], labels: &[i64], classes: usize, options: CrossEntropyOptions<'_, T>, grad: &mut [T],
) -> Result<f64, KernelError> {
    let rows = labels.len();
    check_logits(logits, rows, classes, grad)?;
    options.check(classes)?;
    if let Some(i) = labels.iter().position(|&y| y < 0 || y as u64 >= classes as u64) {
        return Err(KernelError::value(
            "target",
            format!("labels must be in [0, {classes}), got {} at index {i}", labels[i]),
        ));
    }
    let total_weight: f64 = labels.iter().map(|&y| options.weight(y as usize).as_f64()).sum();
    if total_weight <= 0.0 {
        return Err(KernelError::value("weight", "the weights of the batch's labels sum to 0"));
    }
    let eps = options.label_smoothing;
    let keep = cst::<T>(1.0 - eps);
    let spread = cst::<T>(eps / classes as f64);
    let scale = cst::<T>(1.0 / total_weight);
    let sum = sum_over_chunks_mut(grad, ROWS_PER_CHUNK * classes, worth_parallel(logits.len()), |i, g| {
        let first = i * ROWS_PER_CHUNK;
        let mut acc = 0.0;
        for (r, g_row) in g.chunks_exact_mut(classes).enumerate() {
            let row = first + r;
            let y = labels[row] as usize;
            let z = &logits[row * classes..(row + 1) * classes];
            let w_y = options.weight(y);
            let q = |c: usize| {
                let smooth = spread * options.weight(c);
                if c == y {
                    smooth + keep * w_y
                } else {
                    smooth
                }
            };
            acc += cross_entropy_row(z, g_row, q, scale);
        }
        acc
    });
    Ok(sum / total_weight)
}

/// Softmax cross-entropy on `rows × classes` logits against class probabilities (same shape);
/// the mean is over rows, as in PyTorch.
pub fn cross_entropy_probabilities<T: Float>(
    logits: &[T], targets: &[T], classes: usize, options: CrossEntropyOptions<'_, T>, grad: &mut [T],
) -> Result<f64, KernelError> {
    let rows = targets.len().checked_div(classes).unwrap_or(0);
    check_logits(logits, rows, classes, grad)?;
    check_len("target", targets, logits.len())?;
    options.check(classes)?;
    check_finite("target", targets)?;
    let eps = options.label_smoothing;
    let keep = cst::<T>(1.0 - eps);
    let spread = cst::<T>(eps / classes as f64);
    let scale = cst::<T>(1.0 / rows as f64);
    let sum = sum_over_chunks_mut(grad, ROWS_PER_CHUNK * classes, worth_parallel(logits.len()), |i, g| {
        let first = i * ROWS_PER_CHUNK;
        let mut acc = 0.0;
        for (r, g_row) in g.chunks_exact_mut(classes).enumerate() {
            let start = (first + r) * classes;
            let z = &logits[start..start + classes];
            let t = &targets[start..start + classes];
            let q = |c: usize| options.weight(c) * (keep * t[c] + spread);
            acc += cross_entropy_row(z, g_row, q, scale);
        }
        acc
    });
    Ok(sum / rows as f64)
}

/// Row-wise softmax (`log = false`) or log-softmax (`log = true`) of a `rows × cols` matrix.
/// Zero rows or zero columns give an empty `out`: there is nothing to normalize.
pub fn softmax<T: Float>(x: &[T], cols: usize, log: bool, out: &mut [T]) -> Result<(), KernelError> {
    check_len("out", out, x.len())?;
    if x.is_empty() {
        return Ok(());
    }
    if cols == 0 || x.len() % cols != 0 {
        return Err(KernelError::shape("x", format!("a multiple of {cols} elements"), x.len()));
    }
    for_each_chunk_mut(out, ROWS_PER_CHUNK * cols, worth_parallel(x.len()), |i, o| {
        // `out` and `x` have the same length (checked), so this chunk's start is in `x`.
        let start = i * ROWS_PER_CHUNK * cols;
        for (o_row, z) in o.chunks_exact_mut(cols).zip(x[start..].chunks_exact(cols)) {
            let max = z.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
            let sum: T = z.iter().map(|&v| (v - max).exp()).sum();
            if log {
                let lse = max + sum.ln();
                o_row.iter_mut().zip(z).for_each(|(o, &v)| *o = v - lse);
            } else {
                let inv = T::one() / sum;
                o_row.iter_mut().zip(z).for_each(|(o, &v)| *o = (v - max).exp() * inv);
            }
        }
    });
    Ok(())
}

/// Writes the one-hot encoding of `labels` into a `labels.len() × classes` matrix. No labels give
/// an empty `out`; with zero classes every label is out of range.
pub fn one_hot<T: Float>(labels: &[i64], classes: usize, out: &mut [T]) -> Result<(), KernelError> {
    check_len("out", out, checked_product("out", labels.len(), classes)?)?;
    if let Some(i) = labels.iter().position(|&y| y < 0 || y as u64 >= classes as u64) {
        return Err(KernelError::value(
            "labels",
            format!("must be in [0, {classes}), got {} at index {i}", labels[i]),
        ));
    }
    out.fill(T::zero());
    for (row, &y) in out.chunks_exact_mut(classes.max(1)).zip(labels) {
        row[y as usize] = T::one(); // `0 <= y < classes = row.len()`, checked above
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_classes() {
        let logits = [0.0f64; 8];
        let mut grad = [0.0; 8];
        let opts = CrossEntropyOptions { class_weights: None, label_smoothing: 0.0 };
        let loss = cross_entropy_labels(&logits, &[1, 3], 4, opts, &mut grad).unwrap();
        assert!((loss - 4f64.ln()).abs() < 1e-15);
        assert!((grad[1] - (0.25 - 1.0) / 2.0).abs() < 1e-15);
        assert!(cross_entropy_labels(&logits, &[1, 4], 4, opts, &mut grad).is_err());
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let logits = [1e30f32, -1e30, 0.0];
        let mut grad = [0.0; 3];
        let opts = CrossEntropyOptions { class_weights: None, label_smoothing: 0.1 };
        let loss = cross_entropy_labels(&logits, &[1], 3, opts, &mut grad).unwrap();
        assert!(loss.is_finite() && grad.iter().all(|g| g.is_finite()));
        let bce = binary_cross_entropy_with_logits(&[1e4f32, -1e4], &[0.0, 1.0], &mut [0.0; 2]).unwrap();
        assert!((bce - 1e4).abs() < 1e-3);
    }

    #[test]
    fn nan_target_is_an_error() {
        assert!(mse_loss(&[1.0f64, 2.0], &[0.0, f64::NAN], &mut [0.0; 2]).is_err());
    }

    #[test]
    fn zero_sizes_give_defined_results() {
        let opts = CrossEntropyOptions::<f64> { class_weights: None, label_smoothing: 0.0 };
        // A mean over nothing has no value: an error.
        assert!(mse_loss::<f64>(&[], &[], &mut []).is_err());
        assert!(cross_entropy_labels::<f64>(&[], &[], 3, opts, &mut []).is_err());
        assert!(cross_entropy_labels::<f64>(&[], &[0, 0], 0, opts, &mut []).is_err());
        assert!(cross_entropy_probabilities::<f64>(&[], &[], 0, opts, &mut []).is_err());
        // Softmax of no rows or no columns and one-hot of no labels are empty.
        softmax::<f64>(&[], 0, false, &mut []).unwrap();
        softmax::<f64>(&[], 4, true, &mut []).unwrap();
        one_hot::<f64>(&[], 3, &mut []).unwrap();
        one_hot::<f64>(&[], 0, &mut []).unwrap();
        assert!(one_hot::<f64>(&[0], 0, &mut []).is_err());
        assert!(one_hot::<f64>(&[0, 0], usize::MAX, &mut []).is_err());
    }
}
