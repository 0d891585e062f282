//! Losses, each returning the mean loss and writing the gradient of its input in one pass, plus
//! the softmax helpers. Loss sums are accumulated in f64 over fixed chunks (thread-count
//! independent); every loss is a mean, as PyTorch's `reduction="mean"`.

use crate::clip::all_finite;
use crate::error::{check_len, checked_product};
use crate::exp::{exp, exp_in, ln_1p_unit};
use crate::parallel::{
    for_each_chunk_mut, sum_over_chunks_mut, worth_parallel, worth_parallel_above, PAR_MIN_ELEMENTS,
};
use crate::scalar::cst;
use crate::{Float, KernelError};
use multiversion::multiversion;

/// Elements per task of an elementwise loss.
const CHUNK: usize = 8192;
/// Rows per task of a row-wise (softmax) loss.
const ROWS_PER_CHUNK: usize = 64;

fn check_finite<T: Float>(name: &'static str, values: &[T]) -> Result<(), KernelError> {
    if all_finite(values) {
        return Ok(());
    }
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
fn elementwise_mean_loss<T: Float, F: Fn(T, T, T) -> (T, T) + Copy + Sync + Send>(
    input: &[T], target: &[T], grad: &mut [T], term: F,
) -> Result<f64, KernelError> {
    check_same_nonempty(input, target, grad)?;
    check_finite("target", target)?;
    let n = input.len();
    let inv_n = cst::<T>(1.0 / n as f64);
    let sum = sum_over_chunks_mut(grad, CHUNK, worth_parallel(n), |i, g| {
        let (start, end) = (i * CHUNK, i * CHUNK + g.len());
        elementwise_chunk(&input[start..end], &target[start..end], g, inv_n, term)
    });
    Ok(sum / n as f64)
}

/// One chunk of [`elementwise_mean_loss`]; the loss is summed in f64 over [`LANES`] lanes, so
/// the loop vectorizes.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn elementwise_chunk<T: Float, F: Fn(T, T, T) -> (T, T)>(
    input: &[T], target: &[T], grad: &mut [T], inv_n: T, term: F,
) -> f64 {
    let n = grad.len();
    let (input, target) = (&input[..n], &target[..n]);
    let mut lanes = [0.0f64; LANES];
    let split = n - n % LANES;
    let blocks = grad[..split].chunks_exact_mut(LANES).zip(input.chunks_exact(LANES));
    for ((g, x), t) in blocks.zip(target.chunks_exact(LANES)) {
        for j in 0..LANES {
            let (loss, grad_j) = term(x[j], t[j], inv_n);
            g[j] = grad_j;
            lanes[j] += loss.as_f64();
        }
    }
    for j in split..n {
        let (loss, g) = term(input[j], target[j], inv_n);
        grad[j] = g;
        lanes[j - split] += loss.as_f64();
    }
    lanes.iter().sum()
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
        let e = exp(-z.abs());
        // σ(z) = 1/(1 + e) for z >= 0, e/(1 + e) below: no overflow either way.
        let sigmoid = if z >= T::zero() { T::one() } else { e } / (T::one() + e);
        (z.max(T::zero()) - z * t + ln_1p_unit(e), (sigmoid - t) * inv_n)
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

    /// The coefficients of the row loops; `ones` holds `classes` ones, the weights when there
    /// are no class weights.
    fn coefficients<'b>(&self, ones: &'b [T], classes: usize, scale: f64) -> RowCoefficients<'b, T>
    where
        Self: 'b,
    {
        RowCoefficients {
            weights: self.class_weights.unwrap_or(ones),
            keep: cst::<T>(1.0 - self.label_smoothing),
            spread: cst::<T>(self.label_smoothing / classes as f64),
            scale: cst::<T>(scale),
        }
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

/// Lanes of the vectorized row loops: each keeps this many partial results, combined in a fixed
/// order at the end, so the loops vectorize (a single running sum or maximum would not) and give
/// the same bits in every build.
const LANES: usize = 16;

/// The largest element of `z` (NaN elements are passed over, as `f32::max` does).
#[inline(always)]
fn row_max<T: Float>(z: &[T]) -> T {
    let mut lanes = [T::neg_infinity(); LANES];
    let blocks = z.chunks_exact(LANES);
    let rest = blocks.remainder();
    for block in blocks {
        for (m, &v) in lanes.iter_mut().zip(block) {
            *m = if v > *m { v } else { *m };
        }
    }
    rest.iter().chain(&lanes).fold(T::neg_infinity(), |m, &v| if v > m { v } else { m })
}

/// Adds up `lanes` in a fixed order.
#[inline(always)]
fn lane_sum<T: Float>(lanes: &[T; LANES]) -> T {
    lanes.iter().fold(T::zero(), |a, &b| a + b)
}

/// Writes `exp(z − max)` into `out` and returns the sum of those (see [`exp_in`] for `FMA`).
#[inline(always)]
fn exp_shifted<T: Float, const FMA: bool>(z: &[T], max: T, out: &mut [T]) -> T {
    let mut lanes = [T::zero(); LANES];
    let n = z.len().min(out.len());
    let (z, out) = (&z[..n], &mut out[..n]);
    let split = n - n % LANES;
    for (o, v) in out[..split].chunks_exact_mut(LANES).zip(z[..split].chunks_exact(LANES)) {
        for ((o, &v), s) in o.iter_mut().zip(v).zip(lanes.iter_mut()) {
            let e = exp_in::<T, FMA>(v - max);
            *o = e;
            *s += e;
        }
    }
    for ((o, &v), s) in out[split..].iter_mut().zip(&z[split..]).zip(lanes.iter_mut()) {
        let e = exp_in::<T, FMA>(v - max);
        *o = e;
        *s += e;
    }
    lane_sum(&lanes)
}

/// `(Σ_c f(a_c, b_c, c_c).0, Σ_c f(a_c, b_c, c_c).1)` over equal-length slices, in [`LANES`] lanes.
#[inline(always)]
fn lane_sums<T: Float>(a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> (T, T)) -> (T, T) {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let (mut first, mut second) = ([T::zero(); LANES], [T::zero(); LANES]);
    let blocks = a.chunks_exact(LANES).zip(b.chunks_exact(LANES)).zip(c.chunks_exact(LANES));
    for ((a, b), c) in blocks {
        for j in 0..LANES {
            let (x, y) = f(a[j], b[j], c[j]);
            first[j] += x;
            second[j] += y;
        }
    }
    let split = n - n % LANES;
    for (j, ((&a, &b), &c)) in a[split..].iter().zip(&b[split..]).zip(&c[split..]).enumerate() {
        let (x, y) = f(a, b, c);
        first[j] += x;
        second[j] += y;
    }
    (lane_sum(&first), lane_sum(&second))
}

/// The class weights and label smoothing as the row loops use them.
#[derive(Clone, Copy)]
struct RowCoefficients<'a, T> {
    /// One per class (all ones without class weights).
    weights: &'a [T],
    /// `1 − ε`
    keep: T,
    /// `ε / C`
    spread: T,
    /// The factor of every gradient: 1 / (the mean's denominator).
    scale: T,
}

/// Rows of softmax cross-entropy against integer labels: for each row, `q_c = spread·w_c +
/// [c = y]·keep·w_y`, the loss `Σ_c q_c·(lse − z_c)` and the gradient `scale·(Q·p_c − q_c)`
/// with `Q = Σ_c q_c`. Returns the rows' summed loss.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn label_rows<T: Float>(
    logits: &[T], labels: &[i64], classes: usize, k: RowCoefficients<'_, T>, total_weight: T, grad: &mut [T],
) -> f64 {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    let smoothing = k.spread != T::zero();
    let w = &k.weights[..classes];
    let mut loss = 0.0;
    for ((z, g), &y) in logits.chunks_exact(classes).zip(grad.chunks_exact_mut(classes)).zip(labels) {
        let y = y as usize; // checked to be in [0, classes)
        let max = row_max(z);
        let sum = exp_shifted::<T, FMA>(z, max, g);
        let log_sum = sum.ln();
        let target = k.keep * w[y];
        let mut row = target * ((max - z[y]) + log_sum);
        if smoothing {
            // Σ_c w_c·(max − z_c), every term >= 0: no cancellation for large logits.
            let (gaps, _) = lane_sums(z, w, w, |v, w, _| (w * (max - v), T::zero()));
            row += k.spread * (gaps + total_weight * log_sum);
        }
        let a = k.scale * (target + k.spread * total_weight) / sum;
        let b = k.scale * k.spread;
        g.iter_mut().zip(w).for_each(|(g, &w)| *g = a * *g - b * w);
        g[y] -= k.scale * target;
        loss += row.as_f64();
    }
    loss
}

/// Rows of softmax cross-entropy against class probabilities `t`: `q_c = w_c·(keep·t_c +
/// spread)`, loss and gradient as in [`label_rows`].
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn probability_rows<T: Float>(
    logits: &[T], targets: &[T], classes: usize, k: RowCoefficients<'_, T>, grad: &mut [T],
) -> f64 {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    let w = &k.weights[..classes];
    let mut loss = 0.0;
    let rows = logits.chunks_exact(classes).zip(targets.chunks_exact(classes));
    for ((z, t), g) in rows.zip(grad.chunks_exact_mut(classes)) {
        let max = row_max(z);
        let sum = exp_shifted::<T, FMA>(z, max, g);
        let log_sum = sum.ln();
        let (total_q, row) = lane_sums(z, t, w, |v, t, w| {
            let q = w * (k.keep * t + k.spread);
            (q, q * ((max - v) + log_sum))
        });
        let a = k.scale * total_q / sum;
        for ((g, &t), &w) in g.iter_mut().zip(t).zip(w) {
            *g = a * *g - k.scale * (w * (k.keep * t + k.spread));
        }
        loss += row.as_f64();
    }
    loss
}

/// Softmax cross-entropy (and softmax) work per element several times a ReLU's: worth two
/// threads from smaller sizes.
fn rows_worth_parallel(elements: usize) -> bool {
    worth_parallel_above(elements, PAR_MIN_ELEMENTS / 4)
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
    let ones = vec![T::one(); if options.class_weights.is_some() { 0 } else { classes }];
    let k = options.coefficients(&ones, classes, 1.0 / total_weight);
    let class_weights =
        cst::<T>(options.class_weights.map_or(classes as f64, |w| w.iter().map(|v| v.as_f64()).sum()));
    let chunk = ROWS_PER_CHUNK * classes;
    let sum = sum_over_chunks_mut(grad, chunk, rows_worth_parallel(logits.len()), |i, g| {
        let first = i * ROWS_PER_CHUNK;
        let rows = first..first + g.len() / classes;
        let z = &logits[rows.start * classes..rows.end * classes];
        label_rows(z, &labels[rows], classes, k, class_weights, g)
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
    let ones = vec![T::one(); if options.class_weights.is_some() { 0 } else { classes }];
    let k = options.coefficients(&ones, classes, 1.0 / rows as f64);
    let chunk = ROWS_PER_CHUNK * classes;
    let sum = sum_over_chunks_mut(grad, chunk, rows_worth_parallel(logits.len()), |i, g| {
        let range = i * chunk..i * chunk + g.len();
        probability_rows(&logits[range.clone()], &targets[range], classes, k, g)
    });
    Ok(sum / rows as f64)
}

/// Rows of softmax (`log = false`) or log-softmax (`log = true`).
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn softmax_rows<T: Float>(x: &[T], cols: usize, log: bool, out: &mut [T]) {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    for (o, z) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
        let max = row_max(z);
        let sum = exp_shifted::<T, FMA>(z, max, o);
        if log {
            let lse = max + sum.ln();
            o.iter_mut().zip(z).for_each(|(o, &v)| *o = v - lse);
        } else {
            let inv = T::one() / sum;
            o.iter_mut().for_each(|o| *o *= inv);
        }
    }
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
    let chunk = ROWS_PER_CHUNK * cols;
    for_each_chunk_mut(out, chunk, rows_worth_parallel(x.len()), |i, o| {
        // `out` and `x` have the same length (checked), so this chunk is in `x`.
        let start = i * chunk;
        softmax_rows(&x[start..start + o.len()], cols, log, o);
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
    fn a_non_finite_value_anywhere_is_found() {
        for n in [1usize, 15, 16, 17, 100] {
            let ok = vec![f32::MAX; n];
            assert!(all_finite(&ok) && all_finite(&ok[..0]));
            for i in 0..n {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut v = ok.clone();
                    v[i] = bad;
                    assert!(!all_finite(&v), "{bad} at {i} of {n}");
                    let e = check_finite("target", &v).unwrap_err().to_string();
                    assert!(e.contains(&format!("flat index {i}")), "{e}");
                }
            }
        }
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
