//! Matrix products. On x86-64 with AVX2/FMA or AVX-512 the kernels are those of
//! `private-gemm-x86` (faer's own GEMM back end, called directly so that the instruction set can
//! be chosen: see [`simd`]); elsewhere, and for matrix-vector and tiny products, faer's. Transposes
//! are strides, never copies. The dense layer built on them is in [`crate::dense`].
//!
//! Measured on an AVX-512 Zen 5 (f32, one thread) at the dense layer's shapes and 1024³–2048³,
//! these kernels match NumPy's OpenBLAS within a few percent, with the AVX-512 kernel and with the
//! AVX2 one (OpenBLAS' Haswell kernel); the `gemm` crate and BLIS were no faster (see the README).

use crate::error::{check_len, checked_product};
use crate::parallel::{install, num_threads};
use crate::{Float, KernelError};
use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::sync::atomic::{AtomicU8, Ordering};

/// From this many multiply-adds on, a product is split into parts of its output computed side
/// by side (see [`matmul`]); below it, serially on the calling thread.
const SPLIT_MIN_MULTIPLY_ADDS: usize = 1 << 20;

/// Below this many multiply-adds faer's small-matrix kernels are used (faer's own threshold).
const TINY_MULTIPLY_ADDS: usize = 16 * 16 * 16;

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
    matmul_with(lhs, rhs, out, accumulate, simd()?)
}

/// [`matmul`] with the instruction set given: `None` for faer's kernels alone. `Some` must be one
/// this CPU runs (see [`simd`]).
pub fn matmul_with<T: Float>(
    lhs: MatRef<'_, T>, rhs: MatRef<'_, T>, out: &mut [T], accumulate: bool, simd: Option<Simd>,
) -> Result<(), KernelError> {
    let (m, k, n) = (lhs.nrows(), lhs.ncols(), rhs.ncols());
    if rhs.nrows() != k {
        return Err(KernelError::shape("rhs", format!("{k} rows"), format!("{} rows", rhs.nrows())));
    }
    check_len("out", out, checked_product("out", m, n)?)?;
    if simd.is_some_and(|s| detect().is_none_or(|best| s == Simd::Avx512 && best == Simd::Avx2)) {
        return Err(KernelError::value("simd", format!("{simd:?} is not available on this CPU")));
    }
    let accum = if accumulate { Accum::Add } else { Accum::Replace };
    let dst = MatMut::from_row_major_slice_mut(out, m, n);
    if m * n * k < SPLIT_MIN_MULTIPLY_ADDS || m.max(n) < 2 * SPLIT_ALIGN {
        serial_product(dst, lhs, rhs, accum, simd);
        return Ok(());
    }
    // Independent parts of the output, each a serial product, side by side. Measured on 2
    // cores (f32), two halves beat faer's own parallel split at every dense-layer shape tried:
    // 32×512→256 forward 96 → 60 µs, 32×784→512 weight gradient 193 → 146 µs, 128×784→512
    // forward 886 → 591 µs. Serial parts also keep the result independent of the thread count,
    // which faer's parallel matrix-vector products are not. The x86 kernels' own threads (faer's
    // parallel path) tied with two parts at 1024³ on a quiet machine (472 vs 464 GFLOP/s; NumPy
    // 456) and lost to them with another busy process (63 vs 155): their threads wait for each
    // other at barriers.
    let split_rows = m >= 2 * SPLIT_ALIGN && 2 * m >= n;
    let count = parts(m * n * k, if split_rows { m } else { n });
    if num_threads() > 1 {
        install(|| product_in_parts(dst, lhs, rhs, accum, count, split_rows, simd, true));
    } else {
        product_in_parts(dst, lhs, rhs, accum, count, split_rows, simd, false);
    }
    Ok(())
}

/// `dst (+)= lhs · rhs` in `parts` pieces of `dst`'s rows (or columns), halved recursively with
/// cuts on multiples of [`SPLIT_ALIGN`]; each piece is a serial product, and the two halves of
/// each cut run side by side when `parallel`.
#[allow(clippy::too_many_arguments)]
fn product_in_parts<T: Float>(
    dst: MatMut<'_, T>, lhs: MatRef<'_, T>, rhs: MatRef<'_, T>, accum: Accum, parts: usize, split_rows: bool,
    simd: Option<Simd>, parallel: bool,
) {
    let len = if split_rows { dst.nrows() } else { dst.ncols() };
    let half = (len / 2).next_multiple_of(SPLIT_ALIGN);
    if parts < 2 || half >= len {
        serial_product(dst, lhs, rhs, accum, simd);
        return;
    }
    let ((dst_a, dst_b), (lhs_a, lhs_b), (rhs_a, rhs_b)) = if split_rows {
        (dst.split_at_row_mut(half), lhs.split_at_row(half), (rhs, rhs))
    } else {
        (dst.split_at_col_mut(half), (lhs, lhs), rhs.split_at_col(half))
    };
    let first = move || product_in_parts(dst_a, lhs_a, rhs_a, accum, parts / 2, split_rows, simd, parallel);
    let second = move || product_in_parts(dst_b, lhs_b, rhs_b, accum, parts / 2, split_rows, simd, parallel);
    if parallel {
        crate::parallel::join(first, second);
    } else {
        first();
        second();
    }
}

/// `dst (+)= lhs · rhs` on the calling thread: the x86 kernels where they apply, else faer (which
/// also takes matrix-vector products, rank-one updates and tiny products, all below AVX-512 in
/// faer: its AVX-512 paths need its `nightly` feature).
fn serial_product<T: Float>(
    dst: MatMut<'_, T>, lhs: MatRef<'_, T>, rhs: MatRef<'_, T>, accum: Accum, simd: Option<Simd>,
) {
    let (m, n, k) = (dst.nrows(), dst.ncols(), lhs.ncols());
    match simd {
        Some(instr) if m > 1 && n > 1 && k > 1 && m * n * k > TINY_MULTIPLY_ADDS => {
            x86_product(dst, lhs, rhs, accum, instr)
        }
        _ => faer_matmul(dst, accum, lhs, rhs, T::one(), Par::Seq),
    }
}

/// An instruction set of the x86 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    Avx2,
    Avx512,
}

/// The environment variable that caps the instruction set of the matrix products: `avx2` uses
/// the AVX2/FMA kernels on a machine with AVX-512 (to measure what an AVX2-only CPU gets);
/// `avx512` or unset, the widest the CPU has. Read at the first product.
pub const SIMD_ENV: &str = "SADDLEPOINT_SIMD";

/// The instruction set the matrix products use (`None`: not x86-64 or no AVX2/FMA, faer's kernels),
/// or an error naming [`SIMD_ENV`] when it holds an unknown value. Chosen once; an atomic, not a
/// `OnceLock`, so that a process forked while another thread chose it does not wait forever.
pub fn simd() -> Result<Option<Simd>, KernelError> {
    const UNKNOWN: u8 = 0;
    const NONE: u8 = 1;
    const AVX2: u8 = 2;
    const AVX512: u8 = 3;
    const BAD_ENV: u8 = 4;
    static CHOSEN: AtomicU8 = AtomicU8::new(UNKNOWN);
    let mut chosen = CHOSEN.load(Ordering::Relaxed);
    if chosen == UNKNOWN {
        chosen = match (detect(), std::env::var(SIMD_ENV).as_deref()) {
            (_, Ok(v)) if !matches!(v, "" | "avx2" | "avx512") => BAD_ENV,
            (None, _) => NONE,
            (Some(_), Ok("avx2")) | (Some(Simd::Avx2), _) => AVX2,
            (Some(Simd::Avx512), _) => AVX512,
        };
        CHOSEN.store(chosen, Ordering::Relaxed);
    }
    match chosen {
        AVX2 => Ok(Some(Simd::Avx2)),
        AVX512 => Ok(Some(Simd::Avx512)),
        NONE => Ok(None),
        _ => Err(KernelError::value(
            SIMD_ENV,
            format!(
                "must be 'avx2', 'avx512' or unset, got {:?}",
                std::env::var(SIMD_ENV).unwrap_or_default()
            ),
        )),
    }
}

/// The widest instruction set of the x86 kernels this CPU runs.
fn detect() -> Option<Simd> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some(Simd::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Some(Simd::Avx2);
        }
    }
    None
}

/// `dst (+)= lhs · rhs` by the x86 kernels, on the calling thread.
#[cfg(target_arch = "x86_64")]
fn x86_product<T: Float>(
    dst: MatMut<'_, T>, lhs: MatRef<'_, T>, rhs: MatRef<'_, T>, accum: Accum, instr: Simd,
) {
    use private_gemm_x86 as x86;
    use std::any::TypeId;
    let dtype = if TypeId::of::<T>() == TypeId::of::<f32>() { x86::DType::F32 } else { x86::DType::F64 };
    let instr = match instr {
        Simd::Avx2 => x86::InstrSet::Avx256,
        Simd::Avx512 => x86::InstrSet::Avx512,
    };
    let beta = match accum {
        Accum::Replace => x86::Accum::Replace,
        Accum::Add => x86::Accum::Add,
    };
    let alpha = T::one();
    let (m, n, k) = (dst.nrows(), dst.ncols(), lhs.ncols());
    // SAFETY: `T` is f32 or f64 (the only `Float`s) and `dtype` says which; the three pointers
    // with their element strides and `m`, `n`, `k` describe the matrices the views borrow (faer
    // makes the same call); `dst` is borrowed mutably, so nothing else reads or writes it. `k` is
    // at least 2 (`serial_product` checks it), so `Replace` writes all of `dst` (with `k` = 0
    // the kernels would leave it untouched).
    unsafe {
        x86::gemm(
            dtype,
            x86::IType::U64,
            instr,
            m,
            n,
            k,
            dst.as_ptr_mut() as *mut (),
            dst.row_stride(),
            dst.col_stride(),
            std::ptr::null(),
            std::ptr::null(),
            x86::DstKind::Full,
            beta,
            lhs.as_ptr() as *const (),
            lhs.row_stride(),
            lhs.col_stride(),
            false,
            std::ptr::null(),
            0,
            rhs.as_ptr() as *const (),
            rhs.row_stride(),
            rhs.col_stride(),
            false,
            &raw const alpha as *const (),
            1,
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn x86_product<T: Float>(
    dst: MatMut<'_, T>, lhs: MatRef<'_, T>, rhs: MatRef<'_, T>, accum: Accum, _instr: Simd,
) {
    faer_matmul(dst, accum, lhs, rhs, T::one(), Par::Seq);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `a · b` by three loops (row-major `m × k` and `k × n`); also the dense layer's reference.
    pub(crate) fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    /// `len` smooth values in [-1, 1], different for each `seed`.
    pub(crate) fn data(len: usize, seed: f64) -> Vec<f64> {
        (0..len).map(|i| ((i as f64 + seed) * 0.731).sin()).collect()
    }

    /// Every path (faer alone, the x86 kernels at each instruction set this CPU has; serial,
    /// in parts), f32 and f64, plain and transposed operands,
    /// replacing and accumulating, against a naive product.
    #[test]
    fn products_match_naive_loops_on_every_path() {
        let mut levels = vec![None];
        if let Some(best) = detect() {
            levels.push(Some(Simd::Avx2));
            if best == Simd::Avx512 {
                levels.push(Some(Simd::Avx512));
            }
        }
        // tiny, matrix-vector, serial x86, in parts (rows, columns)
        let shapes = [
            (3, 4, 5),
            (1, 40, 30),
            (40, 1, 30),
            (40, 30, 1),
            (33, 17, 45),
            (300, 70, 90),
            (40, 200, 300),
            (256, 512, 520),
        ];
        for &(m, k, n) in &shapes {
            let (a, b, c0) = (data(m * k, 0.5), data(k * n, 1.5), data(m * n, 2.5));
            let expected = naive(&a, &b, m, k, n);
            let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            for &simd in &levels {
                for threads in [1, 2] {
                    crate::parallel::set_num_threads(threads).unwrap();
                    for transposed in [false, true] {
                        let lhs64 = if transposed {
                            MatRef::from_row_major_slice(&at, k, m).transpose()
                        } else {
                            MatRef::from_row_major_slice(&a, m, k)
                        };
                        let rhs64 = if transposed {
                            MatRef::from_row_major_slice(&bt, n, k).transpose()
                        } else {
                            MatRef::from_row_major_slice(&b, k, n)
                        };
                        let mut out = c0.clone();
                        matmul_with(lhs64, rhs64, &mut out, true, simd).unwrap();
                        for i in 0..m * n {
                            assert!(
                                (out[i] - c0[i] - expected[i]).abs() < 1e-9 * k as f64,
                                "f64 {m}x{k}x{n} {simd:?}"
                            );
                        }
                        let (a32, b32): (Vec<f32>, Vec<f32>) = if transposed {
                            (at.iter().map(|&x| x as f32).collect(), bt.iter().map(|&x| x as f32).collect())
                        } else {
                            (a.iter().map(|&x| x as f32).collect(), b.iter().map(|&x| x as f32).collect())
                        };
                        let lhs32 = if transposed {
                            MatRef::from_row_major_slice(&a32, k, m).transpose()
                        } else {
                            MatRef::from_row_major_slice(&a32, m, k)
                        };
                        let rhs32 = if transposed {
                            MatRef::from_row_major_slice(&b32, n, k).transpose()
                        } else {
                            MatRef::from_row_major_slice(&b32, k, n)
                        };
                        let mut out32 = vec![f32::NAN; m * n];
                        matmul_with(lhs32, rhs32, &mut out32, false, simd).unwrap();
                        for i in 0..m * n {
                            assert!(
                                (out32[i] as f64 - expected[i]).abs() < 1e-4 * k as f64,
                                "f32 {m}x{k}x{n} {simd:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_instruction_set_the_cpu_lacks_is_an_error() {
        if detect() == Some(Simd::Avx512) {
            return;
        }
        let a = [1.0f64; 4];
        let mut out = [0.0; 4];
        let m = MatRef::from_row_major_slice(&a, 2, 2);
        assert!(matmul_with(m, m, &mut out, false, Some(Simd::Avx512)).is_err());
    }
}
