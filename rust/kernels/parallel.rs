//! The thread pool every kernel runs in, and the chunked loops that keep results independent of
//! the number of threads.
//!
//! Work is always cut into chunks of a fixed size that does not depend on the thread count; a
//! reduction sums each chunk serially and then adds the chunk sums in order. The serial path walks
//! the same chunks, so 1 thread and N threads give bit-identical results.

use crate::KernelError;
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, RwLock};

/// Below this many elements a cheap elementwise loop (ReLU, scaling) runs on the calling thread:
/// handing work to the pool costs 5-10 µs, and measured on 2 cores two threads start to win
/// at about 256k elements.
pub const PAR_MIN_ELEMENTS: usize = 1 << 18;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn build_pool(threads: usize) -> Result<Arc<ThreadPool>, KernelError> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("saddlepoint-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| {
            KernelError::value("num_threads", format!("cannot start the thread pool: {e}"))
        })
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The pool, created on first use with one thread per available core. `None` only if the
/// operating system refuses to start threads; callers then run serially.
fn pool() -> Option<Arc<ThreadPool>> {
    if let Some(pool) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Some(Arc::clone(pool));
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        *slot = build_pool(default_threads()).ok();
    }
    slot.as_ref().map(Arc::clone)
}

/// Sets the number of threads the kernels use (at least 1).
pub fn set_num_threads(threads: usize) -> Result<(), KernelError> {
    if threads == 0 {
        return Err(KernelError::value(
            "num_threads",
            "must be at least 1, got 0",
        ));
    }
    let new_pool = build_pool(threads)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(new_pool);
    Ok(())
}

/// The number of threads the kernels use.
pub fn num_threads() -> usize {
    pool().map_or(1, |p| p.current_num_threads())
}

/// Runs `f` inside the pool (so rayon calls in it use our threads), or on this thread if there
/// is no pool.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Whether a cheap loop over `elements` items is worth sending to the pool.
pub fn worth_parallel(elements: usize) -> bool {
    worth_parallel_above(elements, PAR_MIN_ELEMENTS)
}

/// Whether a loop over `elements` items is worth sending to the pool, for a loop whose
/// measured break-even size is `threshold`.
pub fn worth_parallel_above(elements: usize, threshold: usize) -> bool {
    elements >= threshold && num_threads() > 1
}

/// Calls `f(chunk_index, chunk)` for each `chunk`-sized piece of `out` (the last may be shorter),
/// in parallel when `parallel` is true.
pub fn for_each_chunk_mut<T, F>(out: &mut [T], chunk: usize, parallel: bool, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    let chunk = chunk.max(1);
    if parallel {
        install(|| {
            out.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, c)| f(i, c))
        });
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Calls `f(chunks, read_chunk)` for each `chunk`-sized piece of several slices at once:
/// `chunks` holds the same piece of every slice of `writes` (in order), `read_chunk` the same
/// piece of `read`. All slices must have `read.len()` elements (callers check). This is how a
/// fused update walks a parameter, its gradient and its state buffers in one pass.
pub fn for_each_chunk_group<T, F>(
    writes: Vec<&mut [T]>,
    read: &[T],
    chunk: usize,
    parallel: bool,
    f: F,
) where
    T: Send + Sync,
    F: Fn(&mut [&mut [T]], &[T]) + Sync + Send,
{
    let chunk = chunk.max(1);
    let mut groups: Vec<Vec<&mut [T]>> = (0..read.len().div_ceil(chunk))
        .map(|_| Vec::new())
        .collect();
    for slice in writes {
        for (group, piece) in groups.iter_mut().zip(slice.chunks_mut(chunk)) {
            group.push(piece);
        }
    }
    let run = |(i, mut group): (usize, Vec<&mut [T]>)| {
        let start = i * chunk;
        let end = (start + chunk).min(read.len());
        f(&mut group, &read[start..end]);
    };
    if parallel {
        install(|| groups.into_par_iter().enumerate().for_each(run));
    } else {
        groups.into_iter().enumerate().for_each(run);
    }
}

/// Like [`for_each_chunk_mut`], but each call returns a partial sum; the partial sums are added
/// in chunk order, so the total is the same for any thread count.
pub fn sum_over_chunks_mut<T, F>(out: &mut [T], chunk: usize, parallel: bool, f: F) -> f64
where
    T: Send,
    F: Fn(usize, &mut [T]) -> f64 + Sync + Send,
{
    let chunk = chunk.max(1);
    let partials: Vec<f64> = if parallel {
        install(|| {
            out.par_chunks_mut(chunk)
                .enumerate()
                .map(|(i, c)| f(i, c))
                .collect()
        })
    } else {
        out.chunks_mut(chunk)
            .enumerate()
            .map(|(i, c)| f(i, c))
            .collect()
    };
    partials.iter().sum()
}

/// Sums `f(start..end)` over fixed-size index ranges of `0..len`, in order.
pub fn sum_over_ranges<F>(len: usize, chunk: usize, parallel: bool, f: F) -> f64
where
    F: Fn(std::ops::Range<usize>) -> f64 + Sync + Send,
{
    let chunk = chunk.max(1);
    let n_chunks = len.div_ceil(chunk);
    let range = |i: usize| i * chunk..((i + 1) * chunk).min(len);
    let partials: Vec<f64> = if parallel {
        install(|| (0..n_chunks).into_par_iter().map(|i| f(range(i))).collect())
    } else {
        (0..n_chunks).map(|i| f(range(i))).collect()
    };
    partials.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_sum_is_the_same_serial_and_parallel() {
        let data: Vec<f64> = (0..100_000)
            .map(|i| ((i as f64) * 0.37).sin() * 1e3)
            .collect();
        let f = |r: std::ops::Range<usize>| data[r].iter().sum::<f64>();
        let serial = sum_over_ranges(data.len(), 4096, false, f);
        let parallel = sum_over_ranges(data.len(), 4096, true, f);
        assert_eq!(serial.to_bits(), parallel.to_bits());
    }

    #[test]
    fn zero_threads_is_an_error() {
        assert!(set_num_threads(0).is_err());
    }
}
