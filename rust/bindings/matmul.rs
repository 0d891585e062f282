//! Bindings of the matrix products' settings (kernels/matmul.rs).

use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::matmul::{self, Simd};

/// The instruction set of the matrix products: "avx512", "avx2", or None (not x86-64 or no
/// AVX2/FMA: faer's portable kernels). The widest the CPU has unless the SADDLEPOINT_SIMD
/// environment variable ("avx2" or "avx512") caps it; ValueError naming it for another value.
#[pyfunction]
pub fn matmul_simd() -> Result<Option<&'static str>, Error> {
    Ok(matmul::simd()?.map(|simd| match simd {
        Simd::Avx2 => "avx2",
        Simd::Avx512 => "avx512",
    }))
}
