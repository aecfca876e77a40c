//! The machine's f32 FMA peak, measured with a tight loop of independent vector FMAs.

use std::time::{Duration, Instant};

use super::arch;
use super::isa::Isa;

/// Measured f32 FMA throughput in GFLOP/s on `threads` threads (each running the loop at
/// once), for code compiled for `isa`: cores x FMA units x lanes x 2 x clock, as the
/// hardware delivers it. Runs for about `budget` (after a short calibration).
pub fn fma_peak_gflops(isa: Isa, threads: usize, budget: Duration) -> f64 {
    let threads = threads.max(1);
    // Calibrate on one thread: iterations per second.
    let mut iters = 1u64 << 16;
    let per_sec = loop {
        let t = Instant::now();
        std::hint::black_box(arch::fma_loop(isa, iters));
        let dt = t.elapsed().as_secs_f64();
        if dt > 0.02 || iters > 1 << 34 {
            break iters as f64 / dt.max(1e-9);
        }
        iters *= 4;
    };
    let iters = ((per_sec * budget.as_secs_f64()).max(1.0)) as u64;
    let start = Instant::now();
    let flops: f64 = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..threads).map(|_| s.spawn(move || arch::fma_loop(isa, iters))).collect();
        handles
            .into_iter()
            .map(|h| h.join().map_or(0.0, |(f, v)| f + f64::from(v) * 0.0))
            .sum()
    });
    flops / start.elapsed().as_secs_f64() / 1e9
}
