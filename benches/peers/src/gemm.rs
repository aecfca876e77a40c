//! GEMM microbenchmark: Kiln's f32 GEMM kernel (kiln_target_cpu::kernels::sgemm) at 1 and 2
//! threads, as GFLOP/s and as a share of the machine's fp32 FMA peak measured the same run.

use kiln_target_cpu::kernels::{Bias, GemmBackend, GemmParams, GemmSpec, Isa, fma_peak_gflops, pack_b, packed_layout_for, sgemm, sgemm_packed};
use std::time::{Duration, Instant};

const SHAPES: &[(&str, usize, usize, usize)] = &[("1024^3", 1024, 1024, 1024), ("BERT FFN m=128 k=384 n=1536", 128, 384, 1536)];
const THREADS: &[usize] = &[1, 2];

/// (median, best) seconds of `f` over at least 5 runs and about `budget` of wall time (max 200
/// runs).
fn time_median(budget: Duration, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<(f64, f64)> {
    f()?; // warm-up (packing buffers, thread pool)
    let start = Instant::now();
    let mut t = Vec::new();
    while t.len() < 5 || (start.elapsed() < budget && t.len() < 200) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    let best = t.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((crate::stats::median(&t).ok_or_else(|| anyhow::anyhow!("no timing"))?, best))
}

pub fn run(device: &str) -> anyhow::Result<()> {
    let isa = Isa::best();
    println!();
    println!("GEMM microbenchmark, f32, measured on {device}");
    let peaks: Vec<f64> = THREADS.iter().map(|&t| fma_peak_gflops(isa, t, Duration::from_millis(500))).collect();
    for (t, p) in THREADS.iter().zip(&peaks) {
        println!("  fp32 FMA peak, measured ({} FMA loop, {t} thread{}): {p:.1} GFLOP/s", isa.name(), if *t == 1 { "" } else { "s" });
    }
    println!("  (the peak is each thread's best ~1 ms burst; GEMM GFLOP/s are given at the median and at the best run)");
    println!("| shape | backend | threads | median ms | GFLOP/s (median) | GFLOP/s (best) | % of peak (median / best) |");
    println!("|---|---|---|---|---|---|---|");
    for &(label, m, k, n) in SHAPES {
        let spec = GemmSpec::new(m, n, k);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0).collect();
        let mut c = vec![0f32; m * n];
        for backend in [GemmBackend::Library, GemmBackend::Micro, GemmBackend::Blocked] {
            for (ti, &threads) in THREADS.iter().enumerate() {
                let params = GemmParams { backend, threads, isa };
                let (s, best) = time_median(Duration::from_secs(1), || Ok(sgemm(&spec, &a, &b, Bias::None, &mut c, &params)?))?;
                let gflops = spec.flops() / s / 1e9;
                let gflops_best = spec.flops() / best / 1e9;
                let name = match backend {
                    GemmBackend::Library => "library (gemm crate)",
                    GemmBackend::Blocked => "blocked (Kiln's own)",
                    GemmBackend::Micro => "micro (Kiln's own)",
                };
                let peak = peaks[ti];
                println!("| {label} | {name} | {threads} | {:.3} | {gflops:.1} | {gflops_best:.1} | {:.0}% / {:.0}% |", s * 1e3, 100.0 * gflops / peak, 100.0 * gflops_best / peak);
            }
        }
        // B packed once (as Kiln's plans do for constant weights), then the micro backend.
        for (ti, &threads) in THREADS.iter().enumerate() {
            let params = GemmParams { backend: GemmBackend::Micro, threads, isa };
            let packed = pack_b(&b, k, n, false, 0, packed_layout_for(&params, n))?;
            let (s, best) = time_median(Duration::from_secs(1), || Ok(sgemm_packed(&spec, &a, &packed, Bias::None, &mut c, &params)?))?;
            let (gflops, gflops_best, peak) = (spec.flops() / s / 1e9, spec.flops() / best / 1e9, peaks[ti]);
            println!(
                "| {label} | micro (Kiln's own), B pre-packed {:?} | {threads} | {:.3} | {gflops:.1} | {gflops_best:.1} | {:.0}% / {:.0}% |",
                packed.layout(),
                s * 1e3,
                100.0 * gflops / peak,
                100.0 * gflops_best / peak
            );
        }
    }
    Ok(())
}

/// The wgpu target's tiled GEMM on the adapter found here, every variant the adapter's limits
/// allow, as GFLOP/s and as a share of the adapter's f32 FMA peak measured the same run
/// (kiln_target_wgpu::bench_peak). 512^3 on a CPU adapter (lavapipe); 4096^3, 2048^3 and a BERT
/// FFN shape on a GPU.
pub fn run_wgpu() -> anyhow::Result<()> {
    println!();
    let (desc, cpu) = match kiln_target_wgpu::bench_peak::adapter() {
        Ok(a) => a,
        Err(e) => {
            println!("wgpu GEMM microbenchmark: skipped ({e})");
            return Ok(());
        }
    };
    println!("GEMM microbenchmark, f32, Kiln's wgpu target, measured on {desc}");
    let peak = kiln_target_wgpu::bench_peak::fma_peak(5)?;
    println!(
        "  fp32 FMA peak, measured (16 fma chains an invocation, 64 fma a loop iteration, {} invocations, {} iterations, best of 5 dispatches of {:.1} ms): {:.1} GFLOP/s",
        peak.threads,
        peak.iters,
        peak.seconds * 1e3,
        peak.gflops
    );
    println!("  (each GEMM: median of its runs, a run = record, submit and wait for one dispatch)");
    println!("| shape | variant | median ms | GFLOP/s | % of peak |");
    println!("|---|---|---|---|---|");
    let sizes: &[(&str, usize, usize, usize)] = if cpu {
        &[("512^3", 512, 512, 512)]
    } else {
        &[("4096^3", 4096, 4096, 4096), ("2048^3", 2048, 2048, 2048), ("BERT FFN m=128 k=384 n=1536", 128, 1536, 384)]
    };
    for &(label, m, n, k) in sizes {
        let figs = kiln_target_wgpu::bench::gemm(m, n, k, if cpu { 3 } else { 10 })?;
        for f in &figs {
            println!("| {label} | {} | {:.3} | {:.1} | {:.1}% |", f.variant, f.seconds * 1e3, f.gflops, 100.0 * f.gflops / peak.gflops);
        }
        if let Some(best) = figs.iter().max_by(|a, b| a.gflops.total_cmp(&b.gflops)) {
            let share = 100.0 * best.gflops / peak.gflops;
            println!("  {label} best: {} at {:.1} GFLOP/s, {share:.1}% of the measured peak", best.variant, best.gflops);
        }
    }
    Ok(())
}
