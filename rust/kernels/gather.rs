//! Gathering mini-batches: rows of a data matrix, picked by index, into a reused buffer.

use crate::error::check_len;
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::{Float, KernelError};

/// `out[i] = x[indices[i]]` for rows of `cols` values. Rows of a large shuffled data set are
/// mostly cache misses, so the copy runs on all threads once it is big enough.
pub fn gather_rows<T: Float>(
    x: &[T],
    cols: usize,
    indices: &[i64],
    out: &mut [T],
) -> Result<(), KernelError> {
    if cols == 0 || x.len() % cols != 0 {
        return Err(KernelError::shape(
            "x",
            format!("a multiple of {cols} elements"),
            x.len(),
        ));
    }
    let rows = x.len() / cols;
    check_len("out", out, indices.len() * cols)?;
    if let Some(i) = indices.iter().position(|&r| r < 0 || r as usize >= rows) {
        return Err(KernelError::value(
            "indices",
            format!("must be in [0, {rows}), got {} at position {i}", indices[i]),
        ));
    }
    let rows_per_task = (16384 / cols).max(1);
    for_each_chunk_mut(
        out,
        rows_per_task * cols,
        worth_parallel(out.len()),
        |i, chunk| {
            let first = i * rows_per_task;
            for (row, &r) in chunk.chunks_exact_mut(cols).zip(&indices[first..]) {
                let start = r as usize * cols;
                row.copy_from_slice(&x[start..start + cols]);
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_rows_and_rejects_bad_indices() {
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut out = vec![0.0; 6];
        gather_rows(&x, 3, &[3, 0], &mut out).unwrap();
        assert_eq!(out, [9.0, 10.0, 11.0, 0.0, 1.0, 2.0]);
        assert!(gather_rows(&x, 3, &[4, 0], &mut out).is_err());
        assert!(gather_rows(&x, 3, &[-1, 0], &mut out).is_err());
    }
}
