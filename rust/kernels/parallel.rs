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
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
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
    sharing: Sharing,
}

impl Pool {
    fn new(threads: usize, rayon: ThreadPool) -> Self {
        Pool { threads, rayon, kernels: Arc::default(), sharing: Sharing::new() }
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
/// 1.31 to 0.78 ms, where two threads had been no faster than one. No thread spins while the
/// pool runs its kernels serially (see [`Sharing`]).
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
    if kernels.running.load(Ordering::Relaxed) == 0 && pool.sharing.pays() {
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

/// Whether handing work to the pool's other threads has paid off lately (see [`join`]).
///
/// Those threads only help when they get cores. With another busy process on the machine they
/// often do not: a thread descheduled while holding a stolen half of a product makes the caller
/// wait for a whole time slice, and a thread spinning for the next kernel takes turns on the
/// cores with the caller. Beside one busy process, two threads ran epochs of a 784-512-256-10
/// network slower than one (median 0.60× at batch 32, 0.86× at 128, 0.91× at 512; 2 cores).
/// So, as OpenMP runtimes adapt their wait policy, the pool measures what its joins gain and,
/// when they gain nothing, runs every kernel serially for a while, then probes again: 0.99×,
/// 1.00× and 0.98× there, and the same as before on an idle machine (1.59×, 1.66×, 1.75×).
struct Sharing {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which kernels run serially; 0 while they share.
    serial_until: AtomicU64,
    /// The next serial period in nanoseconds, longer after each failed probe.
    backoff: AtomicU64,
    window: Mutex<Window>,
}

/// The measured joins since the last verdict.
#[derive(Default)]
struct Window {
    /// Whether these are the first joins (of the pool, or after a serial period), which wake
    /// its sleeping threads (100-250 µs each on a 2-core virtual machine, longer than a
    /// batch-32 layer's product): judged, they made a probe fail even on an idle machine, and
    /// a batch-32 epoch stayed serial.
    waking: bool,
    joins: u32,
    /// Their wall times, summed.
    wall: Duration,
    /// What they would have taken serially, estimated from the half that ran undisturbed.
    serial: Duration,
}

/// Joins measured per verdict: a batch-128 training step of a 784-512-256-10 network has five.
const JOINS_PER_VERDICT: u32 = 8;
/// Joins waking the threads (the pool's first, and the first after a serial period), not judged.
const WAKING_JOINS: u32 = 4;
/// Joins must have been at least as fast as serially (per mille) for the pool to keep sharing
/// work. The estimate of the serial time errs low, so a tie already means sharing pays a little.
const MIN_SPEEDUP_PER_MILLE: u128 = 1000;
/// The first serial period after sharing stopped paying, and the longest: each failed probe
/// makes the next period 4 times longer. A probe costs a dozen joins, at worst a time slice
/// each, so probing at most every 5 ms to 1.28 s costs little beside a busy process, while
/// sharing resumes within 1.28 s once the cores are free, and within 5 ms after a blip.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(1280);
const BACKOFF_GROWTH: u64 = 4;

impl Sharing {
    fn new() -> Self {
        Sharing {
            epoch: Instant::now(),
            serial_until: AtomicU64::new(0),
            backoff: AtomicU64::new(nanos(MIN_BACKOFF)),
            window: Mutex::new(Window { waking: true, ..Window::default() }),
        }
    }

    /// Whether kernels share their work now: no serial period, or it is over (a probe).
    fn pays(&self) -> bool {
        let until = self.serial_until.load(Ordering::Relaxed);
        until == 0 || self.now() >= until
    }

    /// Nanoseconds since `epoch`.
    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// Records a join that took `wall` with halves of `first` and `second`, and gives the
    /// verdict once enough joins were measured. Each half's work is estimated by the shorter
    /// of the two: a half that waited for a core, or ran on a thread that lost its core midway,
    /// took longer than its work. A half that no other thread started ran after the other on
    /// the caller, and that join gains nothing.
    fn record(&self, wall: Duration, first: Duration, second: Duration) {
        self.record_at(self.now(), wall, first, second);
    }

    /// [`Sharing::record`] at `now` nanoseconds after `epoch`.
    fn record_at(&self, now: u64, wall: Duration, first: Duration, second: Duration) {
        // A skipped measurement costs nothing; a lock held by a thread that no longer exists
        // (in a child forked meanwhile) must not make a kernel wait.
        let Ok(mut window) = self.window.try_lock() else {
            return;
        };
        window.joins += 1;
        if window.waking {
            if window.joins == WAKING_JOINS {
                *window = Window::default();
            }
            return;
        }
        window.wall += wall;
        window.serial += 2 * first.min(second);
        if window.joins < JOINS_PER_VERDICT {
            return;
        }
        let paid = window.serial.as_nanos() * 1000 >= window.wall.as_nanos() * MIN_SPEEDUP_PER_MILLE;
        *window = Window { waking: !paid, ..Window::default() };
        if paid {
            self.serial_until.store(0, Ordering::Relaxed);
            self.backoff.store(nanos(MIN_BACKOFF), Ordering::Relaxed);
        } else {
            let backoff = self.backoff.load(Ordering::Relaxed);
            let until = now.saturating_add(backoff).max(1);
            self.serial_until.store(until, Ordering::Relaxed);
            let next = backoff.saturating_mul(BACKOFF_GROWTH).min(nanos(MAX_BACKOFF));
            self.backoff.store(next, Ordering::Relaxed);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How the joins on this thread run: outside any join, or inside one that shares its work
/// (nested joins share too, unmeasured) or runs serially (nested ones too).
#[derive(Clone, Copy, PartialEq)]
enum InJoin {
    No,
    Sharing,
    Serial,
}

thread_local! {
    static IN_JOIN: Cell<InJoin> = const { Cell::new(InJoin::No) };
}

/// Runs `f` with this thread's [`InJoin`] set to `state`, then restores it (even on a panic).
fn in_join<R>(state: InJoin, f: impl FnOnce() -> R) -> R {
    struct Restore(InJoin);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_JOIN.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(IN_JOIN.with(|s| s.replace(state)));
    f()
}

/// Runs `first` and `second`, side by side on the pool's threads while that pays and one after
/// the other on this thread when it does not (see [`Sharing`]); either way each runs the same
/// work, so results do not depend on which. Call it inside [`install`]. Only outermost joins
/// are measured: the nested ones of a product cut in more parts inherit their verdict.
pub fn join<A, B, RA, RB>(first: A, second: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    match IN_JOIN.with(Cell::get) {
        InJoin::Serial => return (first(), second()),
        InJoin::Sharing => return rayon::join(first, || in_join(InJoin::Sharing, second)),
        InJoin::No => {}
    }
    let Some(pool) = pool().filter(|p| p.threads > 1 && p.sharing.pays()) else {
        return in_join(InJoin::Serial, || (first(), second()));
    };
    let timed = |f: A| {
        let start = Instant::now();
        (f(), start.elapsed())
    };
    let start = Instant::now();
    let ((a, first_took), (b, second_took)) = in_join(InJoin::Sharing, || {
        rayon::join(
            || timed(first),
            || {
                in_join(InJoin::Sharing, || {
                    let start = Instant::now();
                    (second(), start.elapsed())
                })
            },
        )
    });
    pool.sharing.record(start.elapsed(), first_took, second_took);
    (a, b)
}

/// Whether a cheap loop over `elements` items is worth sending to the pool.
pub fn worth_parallel(elements: usize) -> bool {
    worth_parallel_above(elements, PAR_MIN_ELEMENTS)
}

/// Whether a loop over `elements` items is worth sending to the pool, for a loop whose
/// measured break-even size is `threshold`.
pub fn worth_parallel_above(elements: usize, threshold: usize) -> bool {
    elements >= threshold && pool().is_some_and(|p| p.threads > 1 && p.sharing.pays())
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

    /// Records `JOINS_PER_VERDICT` joins at `now_ms`, each of `wall_us` with halves of `half_us`.
    fn verdict(sharing: &Sharing, now_ms: u64, wall_us: u64, half_us: u64) {
        let (wall, half) = (Duration::from_micros(wall_us), Duration::from_micros(half_us));
        for _ in 0..JOINS_PER_VERDICT {
            sharing.record_at(now_ms * 1_000_000, wall, half, half);
        }
    }

    /// The joins after a serial period that wake the threads: slow, and not judged.
    fn waking(sharing: &Sharing) {
        let before = sharing.serial_until.load(Ordering::Relaxed);
        for _ in 0..WAKING_JOINS {
            sharing.record_at(0, Duration::from_millis(9), Duration::ZERO, Duration::ZERO);
        }
        assert_eq!(sharing.serial_until.load(Ordering::Relaxed), before);
    }

    #[test]
    fn sharing_stops_for_a_while_when_joins_gain_too_little_and_resumes_when_they_do() {
        let sharing = Sharing::new();
        waking(&sharing);
        let (until, backoff) =
            (|| sharing.serial_until.load(Ordering::Relaxed), || sharing.backoff.load(Ordering::Relaxed));
        let ms = |m: u64| m * 1_000_000;
        verdict(&sharing, 1, 100, 90); // 1.8x: sharing pays
        assert_eq!((until(), backoff()), (0, ms(5)));
        verdict(&sharing, 1, 100, 48); // 0.96x: serial for 5 ms, then probe; 20 ms the next time
        assert_eq!((until(), backoff()), (ms(6), ms(20)));
        let mut now = 6;
        for expected in [20, 80, 320, 1280, 1280] {
            waking(&sharing);
            verdict(&sharing, now, 200, 50); // the second half waited for a core: 0.5x
            assert_eq!(until(), ms(now + expected));
            now += expected;
        }
        waking(&sharing);
        verdict(&sharing, now, 100, 50); // a tie
        assert_eq!((until(), backoff()), (0, ms(5)));
    }

    #[test]
    fn a_verdict_needs_a_full_window_of_joins() {
        let sharing = Sharing::new();
        waking(&sharing);
        for _ in 1..JOINS_PER_VERDICT {
            sharing.record_at(0, Duration::from_millis(9), Duration::ZERO, Duration::ZERO);
        }
        assert_eq!(sharing.serial_until.load(Ordering::Relaxed), 0);
    }

    /// Sums of `data` in `parts` pieces halved recursively by [`join`], written to `out`.
    fn sums_in_parts(data: &[f64], out: &mut [f64]) {
        if out.len() == 1 {
            out[0] = data.iter().sum();
            return;
        }
        let half = out.len() / 2;
        let per_part = data.len() / out.len();
        let (data_a, data_b) = data.split_at(half * per_part);
        let (out_a, out_b) = out.split_at_mut(half);
        join(|| sums_in_parts(data_a, out_a), || sums_in_parts(data_b, out_b));
    }

    #[test]
    fn joins_give_the_same_results_shared_or_serial() {
        let data: Vec<f64> = (0..1 << 16).map(|i| ((i as f64) * 0.37).sin()).collect();
        let mut serial = vec![0.0; 16];
        in_join(InJoin::Serial, || sums_in_parts(&data, &mut serial));
        let mut shared = vec![0.0; 16];
        install(|| sums_in_parts(&data, &mut shared));
        assert_eq!(serial, shared);
    }

    #[test]
    fn a_serial_join_runs_both_halves_and_its_nested_joins_on_the_calling_thread() {
        let here = std::thread::current().id();
        let on_this_thread = || std::thread::current().id() == here;
        let ((a, (b, c)), d) = in_join(InJoin::Serial, || {
            join(|| (on_this_thread(), join(on_this_thread, on_this_thread)), on_this_thread)
        });
        assert!(a && b && c && d);
        assert!(IN_JOIN.with(Cell::get) == InJoin::No);
    }

    #[test]
    fn a_panic_in_a_join_leaves_the_thread_outside_any_join() {
        let panicked = std::panic::catch_unwind(|| {
            in_join(InJoin::Serial, || join(|| (), || std::panic::resume_unwind(Box::new("in a half"))))
        });
        assert!(panicked.is_err());
        assert!(IN_JOIN.with(Cell::get) == InJoin::No);
    }

    #[test]
    fn thread_counts_out_of_range_are_errors() {
        assert!(set_num_threads(0).is_err());
        assert!(set_num_threads(max_threads() + 1).is_err());
    }
}
