//! The machine's f32 FMA peak, measured with a tight loop of independent vector FMAs.

use std::time::{Duration, Instant};

use super::arch;
use super::isa::Isa;

/// Measured f32 FMA throughput in GFLOP/s on `threads` threads, for code compiled for `isa`:
/// cores x FMA units x lanes x 2 x clock, as the hardware delivers it.
///
/// Each thread runs short bursts (about 1 ms) for about `budget` and keeps its best burst
/// rate; the result is the sum over threads. Best-of-bursts is what the hardware can do: on
/// a shared machine a long run mostly measures how often the thread was preempted.
pub fn fma_peak_gflops(isa: Isa, threads: usize, budget: Duration) -> f64 {
    let threads = threads.max(1);
    // Calibrate: iterations that take about 1 ms.
    let mut iters = 1u64 << 10;
    let burst = loop {
        let t = Instant::now();
        std::hint::black_box(arch::fma_loop(isa, iters));
        let dt = t.elapsed().as_secs_f64();
        if dt > 1e-3 || iters > 1 << 34 {
            break ((iters as f64 * 1e-3 / dt.max(1e-9)) as u64).max(1);
        }
        iters *= 2;
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let start = Instant::now();
                    let mut best = 0.0f64;
                    while start.elapsed() < budget {
                        let t = Instant::now();
                        let (flops, v) = arch::fma_loop(isa, burst);
                        std::hint::black_box(v);
                        best = best.max(flops / t.elapsed().as_secs_f64().max(1e-12));
                    }
                    best
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum::<f64>() / 1e9
    })
}
