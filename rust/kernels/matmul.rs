//! Matrix products through faer (runtime CPU dispatch: AVX2/FMA, AVX-512, NEON). Transposes are
//! strides, never copies. The dense layer built on them is in [`crate::dense`].
//!
//! faer was measured against the `gemm` crate on the dense layer's shapes (f32, forward +
//! backward): equal on one thread, 1.1–1.2× faster on two, and bit-identical across thread
//! counts (see the README).

use crate::error::{check_len, checked_product};
use crate::parallel::{install, num_threads};
use crate::{Float, KernelError};
use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// From this many multiply-adds on, a product is split into parts of its output computed side
/// by side (see [`matmul`]); below it, serially on the calling thread.
const SPLIT_MIN_MULTIPLY_ADDS: usize = 1 << 20;

/// Parts start at a multiple of this, so rows stay aligned to SIMD vectors.
const SPLIT_ALIGN: usize = 16;

/// How many parts a product's output is cut into: two up to 64M multiply-adds (the best split
/// measured on 2 cores at every dense-layer shape), then one per 32M, a power of two, at most
/// 16 and at least 256 rows or columns each, so larger machines keep more threads busy. It
/// depends on the shape alone, never on the thread count.
fn parts(multiply_adds: usize, len: usize) -> usize {
    let by_work = multiply_adds >> 25;
    let by_work = if by_work < 2 { 2 } else { 1 << (usize::BITS - 1 - by_work.leading_zeros()) };
    by_work.min(16).min((len / 256).max(2))
}

/// `out (+)= lhs · rhs`, with `out` a row-major `lhs.nrows() × rhs.ncols()` matrix.
pub fn matmul<T: Float>(
    lhs: MatRef<'_, T>, rhs: MatRef<'_, T>, out: &mut [T], accumulate: bool,
) -> Result<(), KernelError> {
    let (m, k, n) = (lhs.nrows(), lhs.ncols(), rhs.ncols());
    if rhs.nrows() != k {
        return Err(KernelError::shape("rhs", format!("{k} rows"), format!("{} rows", rhs.nrows())));
    }
    check_len("out", out, checked_product("out", m, n)?)?;
    let accum = if accumulate { Accum::Add } else { Accum::Replace };
    let dst = MatMut::from_row_major_slice_mut(out, m, n);
    if m * n * k < SPLIT_MIN_MULTIPLY_ADDS || m.max(n) < 2 * SPLIT_ALIGN {
        faer_matmul(dst, accum, lhs, rhs, T::one(), Par::Seq);
        return Ok(());
    }
    // Independent parts of the output, each a serial faer product, side by side. Measured on 2
    // cores (f32), two halves beat faer's own parallel split at every dense-layer shape tried:
    // 32×512→256 forward 96 → 60 µs, 32×784→512 weight gradient 193 → 146 µs, 128×784→512
    // forward 886 → 591 µs. Serial parts also keep the result independent of the thread count,
    // which faer's parallel matrix-vector products are not.
    let split_rows = m >= 2 * SPLIT_ALIGN && 2 * m >= n;
    let count = parts(m * n * k, if split_rows { m } else { n });
    if num_threads() > 1 {
        install(|| product_in_parts(dst, lhs, rhs, accum, count, split_rows, true));
    } else {
        product_in_parts(dst, lhs, rhs, accum, count, split_rows, false);
    }
    Ok(())
}

/// `dst (+)= lhs · rhs` in `parts` pieces of `dst`'s rows (or columns), halved recursively with
/// cuts on multiples of [`SPLIT_ALIGN`]; each piece is a serial faer product, and the two halves
/// of each cut run side by side when `parallel`.
fn product_in_parts<T: Float>(
    dst: MatMut<'_, T>, lhs: MatRef<'_, T>, rhs: MatRef<'_, T>, accum: Accum, parts: usize, split_rows: bool,
    parallel: bool,
) {
    let len = if split_rows { dst.nrows() } else { dst.ncols() };
    let half = (len / 2).next_multiple_of(SPLIT_ALIGN);
    if parts < 2 || half >= len {
        faer_matmul(dst, accum, lhs, rhs, T::one(), Par::Seq);
        return;
    }
    let ((dst_a, dst_b), (lhs_a, lhs_b), (rhs_a, rhs_b)) = if split_rows {
        (dst.split_at_row_mut(half), lhs.split_at_row(half), (rhs, rhs))
    } else {
        (dst.split_at_col_mut(half), (lhs, lhs), rhs.split_at_col(half))
    };
    let first = move || product_in_parts(dst_a, lhs_a, rhs_a, accum, parts / 2, split_rows, parallel);
    let second = move || product_in_parts(dst_b, lhs_b, rhs_b, accum, parts / 2, split_rows, parallel);
    if parallel {
        rayon::join(first, second);
    } else {
        first();
        second();
    }
}
