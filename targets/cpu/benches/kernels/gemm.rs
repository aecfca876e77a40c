//! GEMM GFLOP/s at 1 and 2 threads against the FMA peak.

use std::time::Duration;

use kiln_target_cpu::kernels::{Bias, GemmBackend, GemmParams, GemmSpec, Isa, sgemm};

use crate::timing::time_median;

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0 - 0.5).collect()
}

pub fn run(peaks: &[f64], quick: bool) {
    let shapes: &[(&str, usize, usize, usize)] = &[
        ("cube 128", 128, 128, 128),
        ("cube 512", 512, 512, 512),
        ("cube 1024", 1024, 1024, 1024),
        ("bert-mini ffn1 128x384x1536", 128, 1536, 384),
        ("bert-mini ffn2 128x1536x384", 128, 384, 1536),
        ("bert-mini qkv 128x384x1152", 128, 1152, 384),
        ("bert-base ffn1 128x768x3072", 128, 3072, 768),
        ("bert-base ffn2 128x3072x768", 128, 768, 3072),
        ("bert-base proj 128x768x768", 128, 768, 768),
    ];
    let budget = Duration::from_millis(if quick { 150 } else { 600 });
    println!("\n## GEMM f32 (C = A B, row-major; median GFLOP/s, % of measured FMA peak)");
    println!("| shape (m,n,k) | backend | threads | ms | GFLOP/s | % peak |");
    println!("|---|---|---|---|---|---|");
    for &(name, m, n, k) in shapes {
        let spec = GemmSpec::new(m, n, k);
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        let mut c = vec![0.0f32; m * n];
        let mut backends = vec![(GemmBackend::Library, Isa::best())];
        if !quick || m * n * k <= 1 << 24 {
            backends.push((GemmBackend::Blocked, Isa::best()));
        }
        for (backend, isa) in backends {
            for (t, peak) in peaks.iter().enumerate() {
                let threads = t + 1;
                let p = GemmParams { backend, threads, isa };
                let secs = time_median(budget, 5, || {
                    sgemm(&spec, &a, &b, Bias::None, &mut c, &p).expect("gemm");
                });
                let gflops = spec.flops() / secs / 1e9;
                println!(
                    "| {name} | {backend:?}{} | {threads} | {:.3} | {gflops:.1} | {:.0}% |",
                    if backend == GemmBackend::Blocked { format!(" ({isa})") } else { String::new() },
                    secs * 1e3,
                    100.0 * gflops / peak
                );
            }
        }
    }
}
