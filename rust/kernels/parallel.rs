//! The thread pool every kernel runs in, and the chunked loops that keep results independent of
//! the number of threads.
//!
//! Work is always cut into chunks of a fixed size that does not depend on the thread count; a
//! reduction sums each chunk serially and then adds the chunk sums in order. The serial path walks
//! the same chunks, so 1 thread and N threads give bit-identical results.

use crate::KernelError;
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Below this many elements a cheap elementwise loop (ReLU, scaling) runs on the calling thread.
/// Measured on 2 cores with the pool's threads kept warm between kernels (see [`install`]), two
/// threads win from about 64k elements for ReLU and 128k for batch norm (at 128k: ReLU forward
/// 14.9 → 9.2 µs, batch norm forward + backward 113 → 77 µs); before the threads were kept
/// warm, from about 256k.
pub const PAR_MIN_ELEMENTS: usize = 1 << 17;

/// The pools built so far, by thread count, and the count in use (0 until chosen: one per core).
/// Pools are kept once built, so switching back to a thread count reuses its threads, and the
/// thread that joined a pool (see [`build_pool`]) stays a member of a pool in use.
static POOLS: RwLock<Vec<(usize, Arc<ThreadPool>)>> = RwLock::new(Vec::new());
static THREADS: AtomicUsize = AtomicUsize::new(0);

fn builder(threads: usize) -> ThreadPoolBuilder {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("saddlepoint-{i}"))
}

/// A pool of `threads` threads. The calling thread (normally Python's) joins the first pool it
/// builds as one of its threads, so a kernel called from it runs there directly and does its
/// own share of the work, instead of handing everything to a pool thread and sleeping until
/// it is done: each such hand-off wakes a sleeping thread, which measured 100–250 µs per kernel
/// on a 2-core virtual machine, as much as a batch-32 layer's whole product. A thread can be a
/// member of one pool only (rayon cannot take it out again), so later pools start all their
/// threads.
fn build_pool(threads: usize) -> Result<Arc<ThreadPool>, KernelError> {
    if threads > 1 && rayon::current_thread_index().is_none() {
        if let Ok(pool) = builder(threads).use_current_thread().build() {
            JOINED_IN.with(|pid| pid.set(std::process::id()));
            return Ok(Arc::new(pool));
        }
    }
    builder(threads).build().map(Arc::new).map_err(|e| {
        KernelError::value("num_threads", format!("cannot start the thread pool: {e}"))
    })
}

/// The cores this process may use, asked once: `available_parallelism` reads cgroup files,
/// tens of µs per call.
fn default_threads() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

thread_local! {
    /// The process in which this thread joined a pool as one of its threads (0: never).
    static JOINED_IN: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread joined a pool before process `pid` was forked from its parent
/// (multiprocessing's default on Linux). That pool's other threads do not exist in the child
/// and rayon cannot take this thread out of it: anything it did with that pool could run the
/// parent's unfinished work or wait forever, so it runs every kernel serially.
fn joined_before_fork(pid: u32) -> bool {
    let joined = JOINED_IN.with(Cell::get);
    joined != 0 && joined != pid
}

/// The process the pools were built in.
static POOLS_PID: AtomicU32 = AtomicU32::new(0);

/// The pool of `threads` threads in process `pid`, built on first use.
fn pool_of(threads: usize, pid: u32) -> Result<Arc<ThreadPool>, KernelError> {
    let find = |pools: &Vec<(usize, Arc<ThreadPool>)>| {
        pools
            .iter()
            .find(|(n, _)| *n == threads)
            .map(|(_, p)| Arc::clone(p))
    };
    if POOLS_PID.load(Ordering::Relaxed) == pid {
        if let Some(pool) = find(&POOLS.read().unwrap_or_else(|e| e.into_inner())) {
            return Ok(pool);
        }
    }
    let mut pools = POOLS.write().unwrap_or_else(|e| e.into_inner());
    if POOLS_PID.swap(pid, Ordering::Relaxed) != pid {
        // A forked child (multiprocessing's default on Linux) inherits the pools but not their
        // threads: work sent to them would wait forever. Leave them be (dropping them would
        // signal threads that do not exist here) and start new ones.
        std::mem::forget(std::mem::take(&mut *pools));
    }
    if let Some(pool) = find(&pools) {
        return Ok(pool);
    }
    let pool = build_pool(threads)?;
    pools.push((threads, Arc::clone(&pool)));
    Ok(pool)
}

/// The pool in use: one thread per available core unless [`set_num_threads`] chose otherwise.
/// `None` only if the operating system refuses to start threads; callers then run serially.
fn pool() -> Option<Arc<ThreadPool>> {
    let pid = std::process::id();
    if joined_before_fork(pid) {
        return None;
    }
    let threads = match THREADS.load(Ordering::Relaxed) {
        0 => default_threads(),
        n => n,
    };
    pool_of(threads, pid).ok()
}

/// Sets the number of threads the kernels use (at least 1).
pub fn set_num_threads(threads: usize) -> Result<(), KernelError> {
    if threads == 0 {
        return Err(KernelError::value(
            "num_threads",
            "must be at least 1, got 0",
        ));
    }
    pool_of(threads, std::process::id())?;
    THREADS.store(threads, Ordering::Relaxed);
    Ok(())
}

/// The number of threads the kernels use.
pub fn num_threads() -> usize {
    pool().map_or(1, |p| p.current_num_threads())
}

/// Counts kernels entering the pool; a thread kept warm by [`spin_until_next_kernel`] stops
/// spinning when it changes.
static KERNELS_STARTED: AtomicUsize = AtomicUsize::new(0);
/// Kernels in the pool now (more than one when called from several Python threads, or nested).
static KERNELS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How long pool threads keep spinning after a kernel, waiting for the next one.
const WARM_FOR: Duration = Duration::from_micros(200);

/// Runs `f` inside the pool (so rayon calls in it use our threads), or on this thread if there
/// is no pool.
///
/// Afterwards the other pool threads spin for up to [`WARM_FOR`] instead of going to sleep, as
/// OpenMP runtimes do: a training step calls a dozen kernels a few microseconds apart, and
/// waking a sleeping thread for each costs more than the work it shares. Measured on 2 cores,
/// with the caller joining the pool, a batch-32 step of a 784-512-256-10 network went from
/// 1.31 to 0.78 ms, where two threads had been no faster than one.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(p) => {
            // Counted as running before it counts as started, so a kernel ending meanwhile
            // never sees the pool idle and leaves spinners that this one would not stop.
            let running = Running::start();
            let started = KERNELS_STARTED.fetch_add(1, Ordering::Relaxed) + 1;
            let result = p.install(f);
            drop(running);
            // Only when the pool goes idle (a kernel called inside another must not leave a
            // spinner for the outer one's threads to pick up while they wait), and at most one
            // spinner fewer than the cores, so the caller keeps a core to itself.
            if KERNELS_RUNNING.load(Ordering::Relaxed) == 0 {
                for _ in 1..p.current_num_threads().min(default_threads()) {
                    p.spawn(move || spin_until_next_kernel(started));
                }
            }
            result
        }
        None => f(),
    }
}

/// A kernel counted in [`KERNELS_RUNNING`] until dropped, even if the kernel panics.
struct Running;

impl Running {
    fn start() -> Self {
        KERNELS_RUNNING.fetch_add(1, Ordering::Relaxed);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        KERNELS_RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

fn spin_until_next_kernel(started: usize) {
    let deadline = Instant::now() + WARM_FOR;
    loop {
        for _ in 0..64 {
            if KERNELS_STARTED.load(Ordering::Relaxed) != started {
                return;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= deadline {
            return;
        }
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
    fn a_kernel_inside_another_finishes_with_the_same_result() {
        let mut out = vec![0.0f64; 1 << 16];
        for_each_chunk_mut(&mut out, 4096, true, |i, chunk| {
            let inner = sum_over_ranges(4096, 512, true, |r| r.len() as f64);
            chunk.iter_mut().for_each(|v| *v = inner + i as f64);
        });
        let expected = (0..1 << 16).map(|j| 4096.0 + (j / 4096) as f64);
        assert!(out.iter().copied().eq(expected));
    }

    #[test]
    fn zero_threads_is_an_error() {
        assert!(set_num_threads(0).is_err());
    }
}
