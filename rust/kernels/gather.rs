//! Gathering mini-batches: rows of a data matrix, picked by index, into a reused buffer.

use crate::error::{check_len, checked_product};
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::{Float, KernelError};

/// `out[i] = x[indices[i]]` for a `rows × cols` matrix `x`. Rows of a large shuffled data set
/// are mostly cache misses, so the copy runs on all threads once it is big enough.
///
/// Zero sizes: no indices, or rows of no columns, give an empty `out` (the indices are still
/// checked against `rows`).
pub fn gather_rows<T: Float>(
    x: &[T], rows: usize, cols: usize, indices: &[i64], out: &mut [T],
) -> Result<(), KernelError> {
    check_len("x", x, checked_product("x", rows, cols)?)?;
    check_len("out", out, checked_product("out", indices.len(), cols)?)?;
    if let Some((i, r)) = indices.iter().enumerate().find(|&(_, &r)| r < 0 || r as u64 >= rows as u64) {
        return Err(KernelError::value(
            "indices",
            format!("must be in [0, {rows}), got {r} at position {i}"),
        ));
    }
    if cols == 0 {
        return Ok(());
    }
    let rows_per_task = (16384 / cols).max(1);
    for_each_chunk_mut(out, rows_per_task * cols, worth_parallel(out.len()), |i, chunk| {
        // `out` has `indices.len() · cols` elements (checked), so `first` is in `indices`;
        // every index is in `[0, rows)` (checked) and `x` has `rows · cols` elements.
        let first = i * rows_per_task;
        for (row, &r) in chunk.chunks_exact_mut(cols).zip(&indices[first..]) {
            let start = r as usize * cols;
            row.copy_from_slice(&x[start..start + cols]);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_rows_and_rejects_bad_indices() {
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut out = vec![0.0; 6];
        gather_rows(&x, 4, 3, &[3, 0], &mut out).unwrap();
        assert_eq!(out, [9.0, 10.0, 11.0, 0.0, 1.0, 2.0]);
        assert!(gather_rows(&x, 4, 3, &[4, 0], &mut out).is_err());
        assert!(gather_rows(&x, 4, 3, &[-1, 0], &mut out).is_err());
        assert!(gather_rows(&x, 3, 3, &[0], &mut out[..3]).is_err());
    }

    #[test]
    fn zero_sizes_give_empty_results() {
        let mut none: [f32; 0] = [];
        gather_rows(&[0.0f32; 0], 5, 0, &[4, 0], &mut none).unwrap();
        assert!(gather_rows(&[0.0f32; 0], 5, 0, &[5], &mut none).is_err());
        gather_rows(&[1.0f32; 6], 2, 3, &[], &mut none).unwrap();
        assert!(gather_rows(&[0.0f32; 0], 0, 3, &[0], &mut [0.0; 3]).is_err());
    }
}
