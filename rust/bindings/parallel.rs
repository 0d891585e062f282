//! Bindings of the thread-pool controls (kernels/parallel.rs).

use super::arrays::Args;
use super::scalars;
use crate::error::Error;
use pyo3::prelude::*;
use saddlepoint_kernels::parallel;

/// Sets the number of threads the kernels use: from 1 to 4 per available core, at least 64.
/// The thread that first starts the kernels' threads (normally Python's main thread) works as
/// one of them; after a parallel kernel the others spin for up to 0.2 ms waiting for the next
/// one, then sleep. When sharing work stops paying (the threads do not get the cores, as beside
/// another busy process), kernels run on the calling thread alone for 5 ms to 1.3 s, then try
/// again; results are the same either way. Threads of a count no longer in use end.
#[pyfunction]
pub fn set_num_threads(py: Python<'_>, #[pyo3(from_py_with = scalars::int64)] n: i64) -> Result<(), Error> {
    let max = parallel::max_threads();
    let n = usize::try_from(n).ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
        Error::Value(format!(
            "n must be a number of threads from 1 to {max} ({} per available core, at \
                 least {}), got {n}",
            parallel::MAX_THREADS_PER_CORE,
            parallel::MAX_THREADS_FLOOR
        ))
    })?;
    Args::new(py, "set_num_threads").run(|| parallel::set_num_threads(n))
}

/// The number of threads the kernels use.
#[pyfunction]
pub fn get_num_threads() -> usize {
    parallel::num_threads()
}

/// The thread count as a C function, for `threadpoolctl` (python/saddlepoint/_threadpool.py):
/// it finds thread pools by the C symbols of the libraries loaded in the process, and calls them
/// through `ctypes`.
#[no_mangle]
pub extern "C" fn saddlepoint_get_num_threads() -> std::os::raw::c_int {
    std::os::raw::c_int::try_from(parallel::num_threads()).unwrap_or(std::os::raw::c_int::MAX)
}

/// Sets the thread count as [`set_num_threads`] does, as a C function for `threadpoolctl`:
/// returns 0, or -1 (and changes nothing) for a count out of range or a pool that cannot start.
#[no_mangle]
pub extern "C" fn saddlepoint_set_num_threads(n: std::os::raw::c_int) -> std::os::raw::c_int {
    let threads = usize::try_from(n).ok().filter(|n| (1..=parallel::max_threads()).contains(n));
    match threads.map(parallel::set_num_threads) {
        Some(Ok(())) => 0,
        _ => -1,
    }
}
