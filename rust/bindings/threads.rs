//! Bindings of the thread-pool controls.

use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::parallel;

/// Sets the number of threads the kernels use (at least 1). The thread that first starts the
/// kernels' threads (normally Python's main thread) works as one of them; after a parallel
/// kernel the others spin for up to 0.2 ms waiting for the next one, then sleep.
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
