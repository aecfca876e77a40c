//! int8 GEMM (u8 x i8, pre-packed B, float epilogue) against Kiln's f32 micro GEMM with
//! pre-packed B, per ISA and thread count, and the cost of quantizing A on the fly.
//!
//! Measured 2026-11-22 on the 2-core Sapphire Rapids VM (shared, load 6-8: medians of three
//! runs of interleaved samples; speedup = f32 time / int8 time at the same thread count):
//!
//! | shape (m n k) | threads | f32 ms | VNNI-512 8x48 | AVX-VNNI 6x16 | AVX2 2x16 | AMX 32x32 |
//! |---|---|---|---|---|---|---|
//! | 128 384 384 | 1 | 0.209 | 3.13x | 1.39x | 0.47x | 7.02x |
//! | 128 384 384 | 2 | 0.234 | 2.88x | 1.42x | 0.51x | 5.81x |
//! | 128 1536 384 | 1 | 0.943 | 3.39x | 1.50x | 0.50x | 5.30x |
//! | 128 1536 384 | 2 | 0.982 | 3.22x | 1.48x | 0.51x | 5.20x |
//! | 128 384 1536 | 1 | 0.933 | 3.61x | 2.11x | 0.63x | 6.47x |
//! | 128 384 1536 | 2 | 0.990 | 3.55x | 2.10x | 0.64x | 6.26x |
//! | 1024 1024 1024 | 1 | 21.3 | 2.60x | 1.79x | 0.54x | 9.33x |
//! | 1024 1024 1024 | 2 | 21.0 | 3.17x | 1.78x | 0.53x | 10.1x |
//!
//! (The portable tile: 0.02-0.05x.) Quantizing A, one thread, as a share of the 1-thread
//! VNNI GEMM: static 20% / dynamic 25% at k = 384, 5% / 6% at 128x1536 (n 1536), 20% / 25%
//! at k = 1536, 4% / 7% at 1024^3.

use std::time::Duration;

use kiln_target_cpu::kernels::{
    Activation, Bias, GemmBackend, GemmParams, GemmSpec, QEpilogue, QGemmParams, QInts, QIsa, QuantParams, QuantizedA, pack_b,
    packed_layout_for, qgemm, qpack_b, sgemm_packed,
};

use crate::timing::{Case, interleaved};

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect()
}

pub fn run(max_threads: usize, quick: bool, sweep: bool) {
    let shapes: &[(&str, usize, usize, usize)] = &[
        ("minilm 384x384", 128, 384, 384),
        ("minilm 384x1536", 128, 1536, 384),
        ("minilm 1536x384", 128, 384, 1536),
        ("cube 1024", 1024, 1024, 1024),
    ];
    let budget = Duration::from_millis(if quick { 300 } else { 2000 });
    println!("\n## int8 GEMM (u8 x i8 -> f32 epilogue, B pre-packed, A already quantized) vs f32 micro GEMM (B pre-packed)");
    println!("GOPS = 2mnk / time. speedup = f32 time / int8 time at the same thread count (medians of interleaved samples).\n");
    println!("| shape | m n k | variant | threads | median ms | GOPS median | GOPS best | speedup vs f32 |");
    println!("|---|---|---|---|---|---|---|---|");
    for &(name, m, n, k) in shapes {
        let spec = GemmSpec::new(m, n, k);
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        let micro = GemmParams { backend: GemmBackend::Micro, ..GemmParams::default() };
        let pk = pack_b(&b, k, n, false, 0, packed_layout_for(&micro, n)).expect("pack");
        let w: Vec<i8> = (0..k * n).map(|i| ((i * 31 + 7) % 255) as i32 - 127).map(|v| v as i8).collect();
        let qb = qpack_b(QInts::I8(&w), k, n, n, 1, &[]).expect("pack");
        let p = QuantParams::dynamic(&a, QIsa::Avx512Vnni);
        let mut qa = QuantizedA::default();
        qa.quantize(&a, m, k, &p, QIsa::Avx512Vnni, 1).expect("quantize");
        let scale = vec![p.scale * 0.01; n];
        let bias = vec![0.1f32; n];
        // (label, threads, int8 params or None for f32)
        let mut configs: Vec<(String, usize, Option<QGemmParams>)> = Vec::new();
        for threads in 1..=max_threads {
            configs.push(("f32 micro".into(), threads, None));
            let mut levels = QIsa::available();
            if QIsa::Amx.is_available() {
                levels.push(QIsa::Amx);
            }
            for isa in levels {
                let take = if sweep { isa.tiles().len() } else { 1 };
                for &(mr, nv) in isa.tiles().iter().take(take) {
                    for nc in if sweep { vec![0, 24] } else { vec![0] } {
                        let p = QGemmParams { isa, mr, nv, nc, threads };
                        configs.push((format!("int8 {isa:?} {mr}x{} nc {nc}", nv * 16), threads, Some(p)));
                    }
                }
            }
        }
        let mut outs = vec![vec![0f32; m * n]; configs.len()];
        let epi = QEpilogue { scale: &scale, bias: Some(&bias), act: Activation::None };
        let (a, pk, qa, qb, bias) = (&a, &pk, &qa, &qb, &bias);
        let mut cases: Vec<Case<'_>> = configs
            .iter()
            .zip(outs.iter_mut())
            .map(|((_, threads, q), c)| -> Case<'_> {
                match *q {
                    None => {
                        let pf = micro.threads(*threads);
                        Box::new(move || sgemm_packed(&spec, a, pk, Bias::PerCol(bias), c, &pf).expect("gemm"))
                    }
                    Some(params) => Box::new(move || qgemm(qa, qb, &epi, c, &params).expect("qgemm")),
                }
            })
            .collect();
        let stats = interleaved(budget, 7, &mut cases);
        drop(cases);
        let f32_time: Vec<f64> = (1..=max_threads)
            .map(|t| configs.iter().zip(&stats).find(|((_, th, q), _)| *th == t && q.is_none()).map_or(f64::NAN, |(_, s)| s.median))
            .collect();
        for ((label, threads, _), st) in configs.iter().zip(&stats) {
            let ops = 2.0 * (m * n * k) as f64;
            println!(
                "| {name} | {m} {n} {k} | {label} | {threads} | {:.3} | {:.1} | {:.1} | {:.2}x |",
                st.median * 1e3,
                ops / st.median / 1e9,
                ops / st.min / 1e9,
                f32_time[threads - 1] / st.median
            );
        }
        quantize_cost(name, a, m, k, qb, &scale, budget);
    }
}

/// Quantizing A (static and dynamic, best ISA, one thread) against one int8 GEMM call.
fn quantize_cost(name: &str, a: &[f32], m: usize, k: usize, qb: &kiln_target_cpu::kernels::QPackedB, scale: &[f32], budget: Duration) {
    let isa = QIsa::Avx512Vnni.effective();
    let st = QuantParams { scale: 0.01, zero_point: 3, signed: true };
    let (mut q1, mut q2, mut q3, mut q4) = (QuantizedA::default(), QuantizedA::default(), QuantizedA::default(), QuantizedA::default());
    q3.quantize(a, m, k, &st, isa, 1).expect("quantize");
    let mut c = vec![0f32; m * qb.n()];
    let params = QGemmParams { isa, threads: 1, ..QGemmParams::default() };
    let epi = QEpilogue { scale, bias: None, act: Activation::None };
    let mut cases: Vec<Case<'_>> = vec![
        Box::new(|| q1.quantize(a, m, k, &st, isa, 1).expect("quantize")),
        Box::new(|| q2.quantize(a, m, k, &QuantParams::dynamic(a, isa), isa, 1).expect("quantize")),
        Box::new(|| q4.quantize(a, m, k, &st, isa, 2).expect("quantize")),
        Box::new(|| qgemm(&q3, qb, &epi, &mut c, &params).expect("qgemm")),
    ];
    let s = interleaved(budget, 5, &mut cases);
    let g = s[3].median;
    let share = |x: f64| format!("{:.3} ms ({:.0}% of the int8 GEMM)", x * 1e3, 100.0 * x / g);
    println!(
        "| {name} | quantize A ({isa:?}) | static, 1 thread: {} | dynamic, 1 thread: {} | static, 2 threads: {} | int8 GEMM (1 thread) {:.3} ms |",
        share(s[0].median),
        share(s[1].median),
        share(s[2].median),
        g * 1e3
    );
}
