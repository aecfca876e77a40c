//! Kiln's own fork-join for kernels: the calling thread and up to `threads - 1` helper threads
//! that spin between jobs.
//!
//! Why not rayon here: a rayon parallel call from the executor's thread hands the whole job to
//! the pool and sleeps until a worker wakes it, and idle workers sleep after a few dozen
//! yields. On the 2-vCPU VM this project is measured on, one `join` of two 50 us halves took
//! 85-200 us (median, depending on the idle gap before it) instead of 50 us, and a plan makes
//! about 40 parallel calls per MiniLM run. Here the caller works on the first item itself and
//! helpers that ran a job recently are still spinning, so a hand-off costs well under 1 us
//! (measured 0.2-0.9 us in the same setting). Helpers spin for [`spin_budget`] after their
//! last job (onnxruntime's pool spins likewise) and then park until the next one.
//!
//! One job runs at a time: a call made while the pool is busy (from a helper, or from a second
//! thread of the process) runs its items on the calling thread, in order, which is always
//! correct. A panic in an item is re-raised on the caller.
//!
//! Unsafe code, and why it is sound: a job lives on the caller's stack and helpers reach it
//! through a pointer; the caller returns only after every helper that took the job has counted
//! itself done (and withdraws offers nobody took), and a helper touches nothing of the job
//! after counting. Items sit in cells that exactly one thread takes: the one whose atomic
//! claim returned that index.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Items, each taken by exactly one participant.
struct Slots<T>(Vec<UnsafeCell<Option<T>>>);
// Each slot is taken by exactly one thread: the index that claims it (an atomic counter).
unsafe impl<T: Send> Sync for Slots<T> {}

impl<T> Slots<T> {
    /// Takes item `i`; only the thread that claimed index `i` may call this.
    fn take(&self, i: usize) -> Option<T> {
        // SAFETY: index i was claimed by the calling thread alone (see `try_run`).
        unsafe { (*self.0[i].get()).take() }
    }
}

/// A job as helpers see it (type-erased: `run` claims and runs items until none are left).
struct Job<'a> {
    run: &'a (dyn Fn() + Sync),
    /// Helpers that finished their part (they touch nothing of the job after this).
    done: AtomicUsize,
}

struct Helper {
    /// The job offered to this helper (a `*const Job`, 0 when none): the helper takes it with a
    /// swap, the caller withdraws it with a swap, so exactly one of them gets it.
    offer: AtomicUsize,
    /// Set while the helper is parked (or about to park).
    parked: AtomicBool,
    thread: OnceLock<Thread>,
    /// The helper's kernel thread id (Linux), for steering it off the caller's CPU.
    tid: AtomicI32,
}

impl Helper {
    /// Wakes the helper if it sleeps (an offer or `wake` then finds it spinning).
    fn unpark(&self) {
        if self.parked.load(Ordering::SeqCst)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }
}

struct Pool {
    helpers: Vec<&'static Helper>,
    /// The CPU helpers were last steered away from (-1: none yet).
    avoided: AtomicI64,
    /// Held by the one caller whose job is running.
    busy: Mutex<()>,
}

thread_local! {
    static IS_HELPER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How long a helper spins after a job before parking: `KILN_SPIN_US` microseconds, default
/// 2000 (a plan's steps are tens to hundreds of microseconds apart; a parked helper takes
/// ~50-100 us to wake on a VM).
pub fn spin_budget() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| Duration::from_micros(std::env::var("KILN_SPIN_US").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)))
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1);
        let mut helpers = Vec::with_capacity(n);
        for i in 0..n {
            let h: &'static Helper = Box::leak(Box::new(Helper {
                offer: AtomicUsize::new(0),
                parked: AtomicBool::new(false),
                thread: OnceLock::new(),
                tid: AtomicI32::new(0),
            }));
            let spawned = std::thread::Builder::new().name(format!("kiln-cpu-{}", i + 1)).spawn(move || helper_loop(h));
            match spawned {
                Ok(j) => {
                    let _ = h.thread.set(j.thread().clone());
                    // Its thread id, for steering, is known once it runs.
                    while h.tid.load(Ordering::SeqCst) == 0 {
                        std::thread::yield_now();
                    }
                    helpers.push(h);
                }
                // No thread: the pool is smaller (every job still runs, on fewer threads).
                Err(_) => break,
            }
        }
        Pool { helpers, avoided: AtomicI64::new(-1), busy: Mutex::new(()) }
    })
}

fn helper_loop(h: &'static Helper) {
    IS_HELPER.with(|c| c.set(true));
    h.tid.store(affinity::thread_id(), Ordering::SeqCst);
    let budget = spin_budget();
    loop {
        let mut since = Instant::now();
        let mut spins = 0u32;
        let job = loop {
            let p = h.offer.swap(0, Ordering::AcqRel);
            if p != 0 {
                break p;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && since.elapsed() > budget {
                h.parked.store(true, Ordering::SeqCst);
                // An offer made before `parked` was visible finds no one to unpark: look again.
                if h.offer.load(Ordering::SeqCst) == 0 {
                    std::thread::park();
                }
                h.parked.store(false, Ordering::SeqCst);
                // Woken (by a job, or by `wake` ahead of one): spin a full budget again.
                since = Instant::now();
                continue;
            }
            std::hint::spin_loop();
        };
        // SAFETY: the caller keeps the job alive until `done` counts this helper (or it
        // withdrew the offer, in which case `p` was not handed to us).
        let job = unsafe { &*(job as *const Job<'_>) };
        (job.run)();
        job.done.fetch_add(1, Ordering::Release);
    }
}

/// Runs `f(i, item)` for every item, on the calling thread and up to `threads - 1` helpers;
/// items are claimed in order, one at a time. Returns the first error (items not yet started
/// are then skipped).
pub fn try_run<T: Send, E: Send>(items: Vec<T>, threads: usize, f: impl Fn(usize, T) -> Result<(), E> + Sync) -> Result<(), E> {
    let n = items.len();
    if threads <= 1 || n <= 1 || IS_HELPER.with(|c| c.get()) {
        return items.into_iter().enumerate().try_for_each(|(i, t)| f(i, t));
    }
    let pool = pool();
    let guard = match pool.busy.try_lock() {
        Ok(g) => g,
        Err(_) => return items.into_iter().enumerate().try_for_each(|(i, t)| f(i, t)),
    };
    let helpers = (threads - 1).min(n - 1).min(pool.helpers.len());
    steer(pool);
    let slots = Slots(items.into_iter().map(|t| UnsafeCell::new(Some(t))).collect());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_err: Mutex<Option<E>> = Mutex::new(None);
    let panicked = AtomicBool::new(false);
    let work = || {
        loop {
            if failed.load(Ordering::Relaxed) {
                return;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return;
            }
            let Some(item) = slots.take(i) else { continue };
            match catch_unwind(AssertUnwindSafe(|| f(i, item))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    failed.store(true, Ordering::Relaxed);
                    if let Ok(mut g) = first_err.lock()
                        && g.is_none()
                    {
                        *g = Some(e);
                    }
                }
                Err(_) => {
                    panicked.store(true, Ordering::Relaxed);
                    failed.store(true, Ordering::Relaxed);
                }
            }
        }
    };
    let job = Job { run: &work, done: AtomicUsize::new(0) };
    let ptr = &job as *const Job<'_> as usize;
    for h in &pool.helpers[..helpers] {
        h.offer.store(ptr, Ordering::SeqCst);
        h.unpark();
    }
    work();
    // Withdraw offers nobody took (a parked helper need not be waited for), then wait for the
    // helpers that did take theirs.
    let mut withdrawn = 0;
    for h in &pool.helpers[..helpers] {
        if h.offer.swap(0, Ordering::AcqRel) != 0 {
            withdrawn += 1;
        }
    }
    while job.done.load(Ordering::Acquire) + withdrawn < helpers {
        std::hint::spin_loop();
    }
    drop(guard);
    if panicked.load(Ordering::Relaxed) {
        panic!("a kernel panicked on a Kiln CPU thread");
    }
    match first_err.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Unparks helpers that sleep, so that they spin by the time the next job comes: a plan run
/// calls this first, and its first parallel step (after the embedding lookups and such) then
/// finds them awake instead of paying the wake-up (on a VM, an idle vCPU can take far longer
/// to wake than the 0.1 ms a parked thread takes on a busy one).
pub fn wake() {
    let pool = pool();
    steer(pool);
    for h in &pool.helpers {
        h.unpark();
    }
}

/// Keeps helpers off the CPU the caller runs on. A woken helper is often placed on its waker's
/// CPU, and a helper spinning beside the caller there halves both until the scheduler moves
/// one: on MiniLM-L6 after 100 ms idle, one run in four or five took ~21 ms instead of ~14.5
/// (p90 20.5-21.3 ms unsteered; pinning the two threads apart gave p90 15.0-15.2 ms). The
/// caller itself is never pinned; helpers get the CPUs allowed at start minus the caller's
/// current one, set again only when the caller has moved (`sched_getcpu` is a vDSO read).
fn steer(pool: &Pool) {
    let Some(cpu) = affinity::current_cpu() else { return };
    if pool.avoided.swap(cpu as i64, Ordering::Relaxed) == cpu as i64 {
        return;
    }
    for h in &pool.helpers {
        affinity::avoid(h.tid.load(Ordering::SeqCst), cpu);
    }
}

#[cfg(target_os = "linux")]
mod affinity {
    use std::sync::OnceLock;

    /// The CPUs the process may use, read once.
    fn allowed() -> Option<&'static libc::cpu_set_t> {
        static SET: OnceLock<Option<libc::cpu_set_t>> = OnceLock::new();
        SET.get_or_init(|| {
            // SAFETY: a zeroed cpu_set_t is a valid empty set; the call writes at most its size.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } == 0;
            ok.then_some(set)
        })
        .as_ref()
    }

    pub fn thread_id() -> i32 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }

    pub fn current_cpu() -> Option<usize> {
        // SAFETY: sched_getcpu has no preconditions; -1 is an error.
        usize::try_from(unsafe { libc::sched_getcpu() }).ok()
    }

    /// Lets thread `tid` run on every allowed CPU but `cpu` (when another one is allowed).
    pub fn avoid(tid: i32, cpu: usize) {
        let Some(all) = allowed() else { return };
        if tid <= 0 || cpu >= libc::CPU_SETSIZE as usize {
            return;
        }
        let mut set = *all;
        // SAFETY: cpu < CPU_SETSIZE; the set is a plain value.
        unsafe { libc::CPU_CLR(cpu, &mut set) };
        if unsafe { libc::CPU_COUNT(&set) } == 0 {
            return;
        }
        // SAFETY: a valid set of the size given; a failure (the thread gone) changes nothing.
        unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub fn thread_id() -> i32 {
        -1
    }
    pub fn current_cpu() -> Option<usize> {
        None
    }
    pub fn avoid(_tid: i32, _cpu: usize) {}
}

/// [`try_run`] for items that cannot fail.
pub fn run<T: Send>(items: Vec<T>, threads: usize, f: impl Fn(usize, T) + Sync) {
    let _ = try_run::<T, std::convert::Infallible>(items, threads, |i, t| {
        f(i, t);
        Ok(())
    });
}

/// Every core: for kernels without a tuned thread count.
pub const ALL: usize = usize::MAX;

/// `f(i, chunk)` for every `chunk`-long piece of `data` (the last may be shorter), grouped into
/// a few blocks per participant so that claiming stays cheap for many small pieces.
pub fn chunks<T: Send>(data: &mut [T], chunk: usize, threads: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let chunk = chunk.max(1);
    let pieces = data.len().div_ceil(chunk);
    let per = pieces.div_ceil(available(threads) * 4).max(1);
    run(data.chunks_mut(per * chunk).collect(), threads, |b, block| {
        for (i, c) in block.chunks_mut(chunk).enumerate() {
            f(b * per + i, c);
        }
    });
}

/// Participants a job of `threads` gets here: the caller plus the helpers that exist.
pub fn available(threads: usize) -> usize {
    threads.clamp(1, pool().helpers.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_and_results_land_in_their_slots() {
        for threads in 1..=4 {
            for n in [0usize, 1, 2, 3, 17, 1000] {
                let mut out = vec![0usize; n];
                let parts: Vec<(usize, &mut usize)> = out.iter_mut().enumerate().collect();
                run(parts, threads, |i, (j, o)| {
                    assert_eq!(i, j);
                    *o += j * 3 + 1;
                });
                assert!(out.iter().enumerate().all(|(j, &o)| o == j * 3 + 1), "threads {threads} n {n}");
            }
        }
    }

    #[test]
    fn chunks_visits_every_piece_with_its_index() {
        for n in [0usize, 1, 5, 64, 1001] {
            for chunk in [1usize, 3, 64] {
                let mut v = vec![0usize; n];
                chunks(&mut v, chunk, ALL, |i, c| c.iter_mut().for_each(|x| *x = i));
                assert!(v.iter().enumerate().all(|(j, &x)| x == j / chunk), "n {n} chunk {chunk}");
            }
        }
    }

    #[test]
    fn the_first_error_is_returned_and_later_items_may_be_skipped() {
        let ran = AtomicUsize::new(0);
        let r = try_run((0..100).collect(), 2, |_, x: i32| {
            ran.fetch_add(1, Ordering::Relaxed);
            if x == 5 { Err(format!("item {x}")) } else { Ok(()) }
        });
        assert_eq!(r, Err("item 5".to_string()));
        assert!(ran.load(Ordering::Relaxed) >= 6);
    }

    #[test]
    fn nested_and_concurrent_calls_run_serially_and_correctly() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..50 {
                        run((0..8).collect(), 2, |_, x: usize| {
                            run((0..4).collect(), 2, |_, y: usize| {
                                total.fetch_add(x * 4 + y, Ordering::Relaxed);
                            });
                        });
                    }
                });
            }
        });
        // Each outer call adds sum(0..32) = 496.
        assert_eq!(total.load(Ordering::Relaxed), 3 * 50 * 496);
    }

    #[test]
    fn a_panicking_item_is_re_raised_on_the_caller() {
        let r = catch_unwind(|| run((0..10).collect(), 2, |_, x: i32| assert!(x != 7, "boom")));
        assert!(r.is_err());
        // The pool still works afterwards.
        let sum = AtomicUsize::new(0);
        run((0..10).collect(), 2, |_, x: usize| {
            sum.fetch_add(x, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 45);
    }

    #[test]
    fn parked_helpers_wake_for_the_next_job() {
        let sum = AtomicUsize::new(0);
        run((0..4).collect(), 2, |_, x: usize| {
            sum.fetch_add(x, Ordering::Relaxed);
        });
        std::thread::sleep(spin_budget() + Duration::from_millis(5));
        run((0..4).collect(), 2, |_, x: usize| {
            sum.fetch_add(x, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 12);
    }
}
