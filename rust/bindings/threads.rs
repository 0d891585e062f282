//! Bindings of the thread-pool controls.

use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::parallel;

/// Sets the number of threads the kernels use (at least 1).
#[pyfunction]
pub fn set_num_threads(py: Python<'_>, n: i64) -> Result<(), Error> {
    let n = usize::try_from(n)
        .map_err(|_| Error::Value(format!("n must be a positive number of threads, got {n}")))?;
    py.detach(|| parallel::set_num_threads(n))?;
    Ok(())
}

/// The number of threads the kernels use.
#[pyfunction]
pub fn get_num_threads() -> usize {
    parallel::num_threads()
}
