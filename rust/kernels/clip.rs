//! Gradient clipping: norms summed in a fixed order, and in-place scaling and clamping.

use crate::parallel::{for_each_chunk_mut, sum_over_ranges, worth_parallel};
use crate::scalar::cst;
use crate::{Float, KernelError};
use multiversion::multiversion;

const CHUNK: usize = 16384;

/// `Σ|x|^p` for a finite `p > 0` (accumulated in f64, thread-count independent), or `max|x|`
/// for `p = ∞`. Combining these over several arrays and taking the `1/p` power gives their
/// joint p-norm.
pub fn norm_part<T: Float>(x: &[T], p: f64) -> Result<f64, KernelError> {
    if p.is_nan() || p <= 0.0 {
        return Err(KernelError::value("norm_type", format!("must be > 0, got {p}")));
    }
    let parallel = worth_parallel(x.len());
    if p.is_infinite() {
        let max = x.iter().fold(0.0f64, |m, v| {
            let a = v.abs().as_f64();
            if a.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(a)
            }
        });
        return Ok(max);
    }
    Ok(sum_over_ranges(x.len(), CHUNK, parallel, |r| {
        if p == 2.0 {
            sum_of_squares(&x[r])
        } else {
            x[r].iter().map(|v| v.abs().as_f64().powf(p)).sum::<f64>()
        }
    }))
}

/// `Σ x²` in f64 with eight independent accumulators, so the loop vectorizes instead of
/// waiting on one running sum.
#[multiversion(targets("x86_64+avx2+fma"))]
fn sum_of_squares<T: Float>(x: &[T]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut blocks = x.chunks_exact(8);
    for block in &mut blocks {
        for (acc, v) in lanes.iter_mut().zip(block) {
            *acc += v.as_f64() * v.as_f64();
        }
    }
    let rest: f64 = blocks.remainder().iter().map(|v| v.as_f64() * v.as_f64()).sum();
    lanes.iter().sum::<f64>() + rest
}

/// Whether every element is finite: `Σ x·0` is 0 exactly when no element is NaN or infinite,
/// a branch-free sum that vectorizes (a cheap check to run on every training step).
pub fn all_finite<T: Float>(x: &[T]) -> bool {
    // A count of non-finite chunks, so that a large array (a model's flat gradient) is read by
    // every thread: 535k float32 took 19.6 µs on one thread of a Zen 5.
    let bad = |r: std::ops::Range<usize>| if all_finite_lanes(&x[r]) { 0.0 } else { 1.0 };
    sum_over_ranges(x.len(), CHUNK, worth_parallel(x.len()), bad) == 0.0
}

#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn all_finite_lanes<T: Float>(x: &[T]) -> bool {
    // 32 lanes: four independent vector sums, so the loop is not bound by the latency of one.
    let mut lanes = [T::zero(); 32];
    let mut blocks = x.chunks_exact(32);
    for block in &mut blocks {
        for (acc, &v) in lanes.iter_mut().zip(block) {
            *acc += v * T::zero();
        }
    }
    let rest = blocks.remainder().iter().fold(T::zero(), |a, &v| a + v * T::zero());
    lanes.iter().fold(rest, |a, &v| a + v) == T::zero()
}

/// `x *= factor` in place.
pub fn scale<T: Float>(x: &mut [T], factor: f64) {
    let factor = cst::<T>(factor);
    for_each_chunk_mut(x, CHUNK, worth_parallel(x.len()), |_, c| c.iter_mut().for_each(|v| *v *= factor));
}

/// Clamps every element of `x` to `[-limit, limit]` in place (NaN stays NaN).
pub fn clamp<T: Float>(x: &mut [T], limit: f64) -> Result<(), KernelError> {
    if limit.is_nan() || limit < 0.0 {
        return Err(KernelError::value("clip_value", format!("must be >= 0, got {limit}")));
    }
    let (lo, hi) = (cst::<T>(-limit), cst::<T>(limit));
    for_each_chunk_mut(x, CHUNK, worth_parallel(x.len()), |_, c| {
        c.iter_mut().for_each(|v| {
            if *v < lo {
                *v = lo
            } else if *v > hi {
                *v = hi
            }
        })
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_of_a_known_vector() {
        let x = [3.0f32, -4.0];
        assert_eq!(norm_part(&x, 2.0).unwrap(), 25.0);
        assert_eq!(norm_part(&x, 1.0).unwrap(), 7.0);
        assert_eq!(norm_part(&x, f64::INFINITY).unwrap(), 4.0);
        assert!(norm_part(&x, 0.0).is_err());
        assert!(all_finite(&[1.0f32; 20]));
        let mut bad = [1.0f64; 20];
        bad[17] = f64::INFINITY;
        assert!(!all_finite(&bad));
        bad[17] = f64::NAN;
        assert!(!all_finite(&bad));
        let mut y = [3.0f64, -4.0, 0.5];
        clamp(&mut y, 1.0).unwrap();
        assert_eq!(y, [1.0, -1.0, 0.5]);
    }
}
