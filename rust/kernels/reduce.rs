//! Reductions over the rows of a matrix.

use crate::error::{check_len, checked_product};
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::{Float, KernelError};

/// Columns summed by one task; rows are always added in order, so each column's sum is the same
/// for any thread count.
const COLUMNS_PER_TASK: usize = 64;

/// `out[j] (+)= Σ_i matrix[i, j]` for a row-major `rows × cols` matrix.
pub fn column_sums<T: Float>(
    matrix: &[T], rows: usize, cols: usize, out: &mut [T], accumulate: bool,
) -> Result<(), KernelError> {
    check_len("matrix", matrix, checked_product("matrix", rows, cols)?)?;
    check_len("out", out, cols)?;
    if cols == 0 {
        return Ok(());
    }
    let parallel = worth_parallel(rows * cols) && cols > COLUMNS_PER_TASK;
    for_each_chunk_mut(out, COLUMNS_PER_TASK, parallel, |block, acc| {
        let (start, end) = (block * COLUMNS_PER_TASK, block * COLUMNS_PER_TASK + acc.len());
        if !accumulate {
            acc.fill(T::zero());
        }
        for row in matrix.chunks_exact(cols) {
            // `end <= cols`: the chunks of `out` (length `cols`, checked) end there.
            for (a, &v) in acc.iter_mut().zip(&row[start..end]) {
                *a += v;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_sums_match_a_loop() {
        let (rows, cols) = (7, 130);
        let m: Vec<f64> = (0..rows * cols).map(|i| i as f64 * 0.5).collect();
        let mut out = vec![1.0; cols];
        column_sums(&m, rows, cols, &mut out, true).unwrap();
        for j in 0..cols {
            let expected: f64 = 1.0 + (0..rows).map(|i| m[i * cols + j]).sum::<f64>();
            assert_eq!(out[j], expected);
        }
        assert!(column_sums(&m, rows, cols + 1, &mut out, false).is_err());
    }
}
