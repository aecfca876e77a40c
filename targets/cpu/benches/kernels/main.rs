//! Kernel benchmarks: GEMM GFLOP/s and % of the measured f32 FMA peak at 1 and 2 threads,
//! convolution and fused-kernel timings. Prints medians (the machine may be shared: medians
//! damp, but do not remove, noise from other work).
//!
//! `cargo bench -p kiln-target-cpu --bench kernels [-- gemm|conv|fused|int8|wonly|all] [--quick]
//! [--sweep] [--shape=NAME]` (`--sweep`: the micro backend on every panel width and ISA;
//! `--shape`: only GEMM shapes whose name contains NAME)

mod conv;
mod fused;
mod gemm;
mod qgemm;
mod timing;
mod wgemm;

use std::time::Duration;

use kiln_target_cpu::kernels::{Isa, cpu_features, fma_peak_gflops};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sweep = args.iter().any(|a| a == "--sweep");
    let only = args.iter().find_map(|a| a.strip_prefix("--shape="));
    let which: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    let want = |name: &str| which.is_empty() || which.contains(&"all") || which.contains(&name);

    let f = cpu_features();
    println!("cpu: {}", f.cache_key());
    let max_threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    let isa = Isa::best();
    let budget = Duration::from_millis(if quick { 100 } else { 250 });
    // The peak is a capability: the best of several short trials estimates it under load.
    let trials = if quick { 3 } else { 8 };
    let peaks: Vec<f64> = (1..=max_threads).map(|t| (0..trials).map(|_| fma_peak_gflops(isa, t, budget)).fold(0.0, f64::max)).collect();
    for (t, p) in peaks.iter().enumerate() {
        println!("fp32 FMA peak ({isa}, {} thread(s)): {p:.1} GFLOP/s (best of {trials} trials)", t + 1);
    }
    if want("gemm") {
        gemm::run(&peaks, quick, sweep, only);
    }
    if want("conv") {
        conv::run(max_threads, quick);
    }
    if want("int8") {
        qgemm::run(max_threads, quick, sweep);
    }
    if want("wonly") {
        wgemm::run(max_threads, quick);
    }
    if want("fused") {
        fused::run(max_threads, quick);
    }
}
