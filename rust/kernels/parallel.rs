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
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Below this many elements a cheap elementwise loop (ReLU, scaling) runs on the calling thread.
/// Measured on 2 cores with the pool's threads kept warm between kernels (see [`install`]), two
/// threads win from about 64k elements for ReLU and 128k for batch norm (at 128k: ReLU forward
/// 14.9 → 9.2 µs, batch norm forward + backward 113 → 77 µs); before the threads were kept
/// warm, from about 256k.
pub const PAR_MIN_ELEMENTS: usize = 1 << 17;

/// [`set_num_threads`] accepts up to this many threads per available core ...
pub const MAX_THREADS_PER_CORE: usize = 4;
/// ... and at least this many on any machine.
pub const MAX_THREADS_FLOOR: usize = 64;

/// The most threads [`set_num_threads`] accepts: [`MAX_THREADS_PER_CORE`] per available core,
/// at least [`MAX_THREADS_FLOOR`]. More threads than cores only take turns on them; the margin
/// leaves room to experiment, and the bound keeps a typo from starting thousands of threads.
pub fn max_threads() -> usize {
    (MAX_THREADS_PER_CORE * cores()).max(MAX_THREADS_FLOOR)
}

/// The cores this process may use, asked once (`available_parallelism` reads cgroup files, tens
/// of µs per call). An atomic, not a `OnceLock`: a child forked while another thread of the
/// parent was filling a `OnceLock` would wait for it forever.
fn cores() -> usize {
    static CORES: AtomicUsize = AtomicUsize::new(0);
    match CORES.load(Ordering::Relaxed) {
        0 => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            CORES.store(cores, Ordering::Relaxed);
            cores
        }
        cores => cores,
    }
}

/// The thread count chosen by [`set_num_threads`] (0 until chosen: one per core).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// A rayon pool and the bookkeeping of the kernels running in it.
struct Pool {
    threads: usize,
    rayon: ThreadPool,
    kernels: Arc<KernelCounts>,
}

impl Pool {
    fn new(threads: usize, rayon: ThreadPool) -> Self {
        Pool { threads, rayon, kernels: Arc::default() }
    }
}

/// Counts of the kernels entering a pool (a thread kept warm by [`spin_until_next_kernel`]
/// stops spinning when it changes) and of those in it now (more than one when called from
/// several Python threads, or nested).
#[derive(Default)]
struct KernelCounts {
    started: AtomicUsize,
    running: AtomicUsize,
}

/// The pools of one process: at most two, so changing the thread count never leaves threads
/// behind. The first thread to build a pool of several threads joins it (see [`build_pool`])
/// and can never leave it, so that pool is kept; a pool of any other count is replaced when the
/// count changes, and its threads end once no kernel runs in it (a running kernel holds its
/// `Arc`).
#[derive(Default)]
struct PoolSet {
    joined: Option<Arc<Pool>>,
    other: Option<Arc<Pool>>,
}

/// The pools of the process `pid`. A forked child (multiprocessing's default on Linux) inherits
/// its parent's, but none of their threads, and with them any lock another thread of the parent
/// held at the fork, never to be released there: the child never touches them and starts its
/// own (this lock was once an `RwLock` that every kernel read: a child forked while another
/// thread was preempted inside such a read waited forever for it; 1 child in 20 to 25 forked
/// while another thread called `set_num_threads` in a loop, on a loaded machine).
struct ProcessPools {
    pid: u32,
    pools: Mutex<PoolSet>,
}

/// The current process's [`ProcessPools`], leaked: never freed, so a reference to it stays valid
/// for the life of the process. A child leaves its parent's leaked too: dropping the pools in it
/// would signal threads that do not exist there, and could wait on a lock the parent held.
static PROCESS_POOLS: AtomicPtr<ProcessPools> = AtomicPtr::new(std::ptr::null_mut());

/// The pools of process `pid` (the caller's), made on first use in each process.
fn process_pools(pid: u32) -> &'static ProcessPools {
    loop {
        let current = PROCESS_POOLS.load(Ordering::Acquire);
        // SAFETY: PROCESS_POOLS only ever holds null or a pointer from `Box::leak`, which is
        // never freed.
        if let Some(pools) = unsafe { current.as_ref() } {
            if pools.pid == pid {
                return pools;
            }
        }
        let fresh = Box::new(ProcessPools { pid, pools: Mutex::new(PoolSet::default()) });
        let fresh: *mut ProcessPools = Box::leak(fresh);
        if PROCESS_POOLS.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Another thread of this process made them first: use those.
            // SAFETY: `fresh` came from `Box::leak` above and was never shared.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }
}

impl ProcessPools {
    /// The pool of `threads` threads, built if there is none: the joined pool if it has that
    /// count, else the other one, replacing (and so ending) the other pool of an older count.
    fn pool_of(&self, threads: usize) -> Result<Arc<Pool>, KernelError> {
        let mut set = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(joined) = set.joined.as_ref().filter(|p| p.threads == threads) {
            let joined = Arc::clone(joined);
            set.other = None;
            return Ok(joined);
        }
        if let Some(other) = set.other.as_ref().filter(|p| p.threads == threads) {
            return Ok(Arc::clone(other));
        }
        let (pool, joined) = build_pool(threads, set.joined.is_none())?;
        let pool = Arc::new(pool);
        if joined {
            set.joined = Some(Arc::clone(&pool));
            set.other = None;
        } else {
            set.other = Some(Arc::clone(&pool));
        }
        Ok(pool)
    }
}

fn builder(threads: usize) -> ThreadPoolBuilder {
    ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("saddlepoint-{i}"))
}

/// A pool of `threads` threads, and whether the calling thread joined it. The calling thread
/// (normally Python's) joins the first pool it builds as one of its threads, when `may_join`
/// (no thread joined one yet in this process), so a kernel called from it runs there directly
/// and does its own share of the work, instead of handing everything to a pool thread and
/// sleeping until it is done: each such hand-off wakes a sleeping thread, which measured
/// 100–250 µs per kernel on a 2-core virtual machine, as much as a batch-32 layer's whole
/// product. A thread can be a member of one pool only (rayon cannot take it out again), so
/// later pools start all their threads.
fn build_pool(threads: usize, may_join: bool) -> Result<(Pool, bool), KernelError> {
    if may_join && threads > 1 && rayon::current_thread_index().is_none() {
        if let Ok(rayon) = builder(threads).use_current_thread().build() {
            JOINED_IN.with(|pid| pid.set(std::process::id()));
            return Ok((Pool::new(threads, rayon), true));
        }
    }
    match builder(threads).build() {
        Ok(rayon) => Ok((Pool::new(threads, rayon), false)),
        Err(e) => Err(KernelError::value("num_threads", format!("cannot start the thread pool: {e}"))),
    }
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

/// The pool in use: one thread per available core unless [`set_num_threads`] chose otherwise.
/// `None` only if the operating system refuses to start threads; callers then run serially.
fn pool() -> Option<Arc<Pool>> {
    let pid = std::process::id();
    if joined_before_fork(pid) {
        return None;
    }
    let threads = match THREADS.load(Ordering::Relaxed) {
        0 => cores(),
        n => n,
    };
    process_pools(pid).pool_of(threads).ok()
}

/// Sets the number of threads the kernels use: from 1 to [`max_threads`].
pub fn set_num_threads(threads: usize) -> Result<(), KernelError> {
    let max = max_threads();
    if threads == 0 || threads > max {
        return Err(KernelError::value("num_threads", format!("must be from 1 to {max}, got {threads}")));
    }
    process_pools(std::process::id()).pool_of(threads)?;
    THREADS.store(threads, Ordering::Relaxed);
    Ok(())
}

/// The number of threads the kernels use.
pub fn num_threads() -> usize {
    pool().map_or(1, |p| p.threads)
}

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
    let Some(pool) = pool() else {
        return f();
    };
    let kernels = &pool.kernels;
    // Counted as running before it counts as started, so a kernel ending meanwhile never sees
    // the pool idle and leaves spinners that this one would not stop.
    let running = Running::start(kernels);
    let started = kernels.started.fetch_add(1, Ordering::Relaxed) + 1;
    let result = pool.rayon.install(f);
    drop(running);
    // Only when the pool goes idle (a kernel called inside another must not leave a spinner
    // for the outer one's threads to pick up while they wait), and at most one spinner fewer
    // than the cores, so the caller keeps a core to itself.
    if kernels.running.load(Ordering::Relaxed) == 0 {
        for _ in 1..pool.threads.min(cores()) {
            let kernels = Arc::clone(kernels);
            pool.rayon.spawn(move || spin_until_next_kernel(&kernels, started));
        }
    }
    result
}

/// A kernel counted in [`KernelCounts::running`] until dropped, even if the kernel panics.
struct Running<'a>(&'a KernelCounts);

impl<'a> Running<'a> {
    fn start(kernels: &'a KernelCounts) -> Self {
        kernels.running.fetch_add(1, Ordering::Relaxed);
        Running(kernels)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

fn spin_until_next_kernel(kernels: &KernelCounts, started: usize) {
    let deadline = Instant::now() + WARM_FOR;
    loop {
        for _ in 0..64 {
            if kernels.started.load(Ordering::Relaxed) != started {
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
        install(|| out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c)));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Writable arguments of an elementwise kernel that can be cut into the same `chunk`-sized
/// pieces as the slice they run along: a slice, an optional slice (None in every piece), a
/// pair, or a struct of them (an optimizer's state).
pub trait Split: Sized + Send {
    /// `pieces` pieces of `chunk` elements each (the last may be shorter).
    fn split(self, chunk: usize, pieces: usize) -> Vec<Self>;
}

impl<T: Send> Split for &mut [T] {
    fn split(self, chunk: usize, _pieces: usize) -> Vec<Self> {
        self.chunks_mut(chunk.max(1)).collect()
    }
}

impl<T: Send> Split for Option<&mut [T]> {
    fn split(self, chunk: usize, pieces: usize) -> Vec<Self> {
        match self {
            Some(s) => s.chunks_mut(chunk.max(1)).map(Some).collect(),
            None => (0..pieces).map(|_| None).collect(),
        }
    }
}

impl<A: Split, B: Split> Split for (A, B) {
    fn split(self, chunk: usize, pieces: usize) -> Vec<Self> {
        let (a, b) = self;
        a.split(chunk, pieces).into_iter().zip(b.split(chunk, pieces)).collect()
    }
}

/// Calls `f(pieces, read_piece)` for each `chunk`-sized piece of `writes` (see [`Split`]) and
/// the same piece of `read`. Every slice must have `read.len()` elements (callers check). This
/// is how a fused update walks a parameter, its gradient and its state buffers in one pass.
pub fn for_each_piece<T, W, F>(writes: W, read: &[T], chunk: usize, parallel: bool, f: F)
where
    T: Sync,
    W: Split,
    F: Fn(W, &[T]) + Sync + Send,
{
    let chunk = chunk.max(1);
    let pieces = writes.split(chunk, read.len().div_ceil(chunk));
    if parallel {
        install(|| pieces.into_par_iter().zip(read.par_chunks(chunk)).for_each(|(w, r)| f(w, r)));
    } else {
        pieces.into_iter().zip(read.chunks(chunk)).for_each(|(w, r)| f(w, r));
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
        install(|| out.par_chunks_mut(chunk).enumerate().map(|(i, c)| f(i, c)).collect())
    } else {
        out.chunks_mut(chunk).enumerate().map(|(i, c)| f(i, c)).collect()
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
        let data: Vec<f64> = (0..100_000).map(|i| ((i as f64) * 0.37).sin() * 1e3).collect();
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
    fn thread_counts_out_of_range_are_errors() {
        assert!(set_num_threads(0).is_err());
        assert!(set_num_threads(max_threads() + 1).is_err());
    }
}
