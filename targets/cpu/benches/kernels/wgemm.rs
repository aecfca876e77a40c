//! Weight-only GEMM (`wgemm`: low-precision weights packed once, f32 activations) against
//! Kiln's f32 micro GEMM with pre-packed f32 weights, at all threads: f16 storage, bf16
//! compute (AVX512-BF16 and AMX-BF16 tiles), int4 with groups of 32 and 128, each on the
//! GEMV and the dequantizing GEMM path. speedup = f32 time / time (medians of interleaved
//! samples).
//!
//! Measured on the 2-core Sapphire Rapids VM (shared, load 4 on 2 cores: the f32 baseline of
//! the 1-row GEMV moved between 1.4 and 2.5 ms across runs), 2 threads, `-- wonly`:
//!
//! | m k n | f32 ms | f16 GEMV | f16 deq. GEMM | bf16 AVX512-BF16 | bf16 AMX | int4 g32 GEMV / GEMM | int4 g128 GEMV / GEMM |
//! |---|---|---|---|---|---|---|---|
//! | 128 384 384 | 0.214 | 0.71x | 0.95x | 0.59x | 2.12x | 0.41x / 0.97x | 0.41x / 0.96x |
//! | 128 384 1536 | 0.914 | 0.74x | 0.99x | 0.63x | 3.00x | 0.43x / 0.97x | 0.43x / 0.96x |
//! | 1 4096 4096 | 2.531 | 2.18x | 0.77x | 1.07x | 1.90x | 1.73x / 0.81x | 1.82x / 0.84x |
//! | 8 4096 4096 | 3.668 | 2.45x | 0.92x | 1.52x | 2.15x | 1.00x / 0.97x | 1.04x / 0.94x |
//!
//! At 128 rows the f32 tile is compute-bound and the weight-only paths add the conversion
//! (the dequantizing GEMM: 1-5% slower; the GEMV tile is not made for many rows); only AMX
//! gains there. `vdpbf16ps` runs on one port (32 products per cycle, the same as two f32 FMA
//! ports), so the AVX512-BF16 tile only gains where the weights' bandwidth matters. Few rows
//! are bandwidth-bound: half or an eighth of the bytes wins, as long as the conversion keeps
//! up (int4 at 8 rows is conversion-bound: the 4-row tile converts the weights twice).

use std::time::Duration;

use kiln_target_cpu::kernels::{
    Activation, Bias, GemmBackend, GemmParams, GemmSpec, Isa, WCompute, WEpilogue, WGemmParams, WPacked, WPath, WScales, WSource, pack_b,
    packed_layout_for, sgemm_packed, wgemm, wpack,
};
use kiln_tensor::{bf16, f16};

use crate::timing::{Case, interleaved};

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn int4(k: usize, n: usize, group: usize) -> WPacked {
    let q: Vec<i8> = (0..k * n).map(|i| ((i * 31 + 7) % 16) as i8 - 8).collect();
    let scale = vec![0.01f32; k.div_ceil(group) * n];
    wpack(WSource::I4(&q), k, n, Some(WScales { scale: &scale, zero_point: &[], block: group })).expect("pack")
}

pub fn run(max_threads: usize, quick: bool) {
    let shapes: &[(&str, usize, usize, usize)] = &[
        ("minilm 384x384", 128, 384, 384),
        ("minilm 384x1536", 128, 384, 1536),
        ("gemv 4096", 1, 4096, 4096),
        ("8 rows 4096", 8, 4096, 4096),
    ];
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    let threads = max_threads.max(1);
    println!("\n## weight-only GEMM vs f32 micro GEMM (B pre-packed), {threads} thread(s), bias fused");
    println!("speedup = f32 time / time (medians of interleaved samples); bytes = packed weights.\n");
    println!("| shape | m k n | variant | weight bytes | median ms | speedup vs f32 |");
    println!("|---|---|---|---|---|---|");
    for &(name, m, k, n) in shapes {
        let (x, b) = (data(m * k, 1), data(k * n, 2));
        let bias = vec![0.1f32; n];
        let micro = GemmParams { backend: GemmBackend::Micro, threads, ..GemmParams::default() };
        let pk = pack_b(&b, k, n, false, 0, packed_layout_for(&micro, n)).expect("pack");
        let halves = |f: fn(f32) -> u16| b.iter().map(|&v| f(v)).collect::<Vec<u16>>();
        let w16 = wpack(WSource::F16(&halves(|v| f16::from_f32(v).to_bits())), k, n, None).expect("pack");
        let wb16 = wpack(WSource::Bf16(&halves(|v| bf16::from_f32(v).to_bits())), k, n, None).expect("pack");
        let (w4a, w4b) = (int4(k, n, 32), int4(k, n, 128));
        let p = |path| WGemmParams { path, threads, isa: Isa::best() };
        // (label, weights, compute, params); None weights: the f32 GEMM.
        let configs: Vec<(&str, Option<&WPacked>, WCompute, WGemmParams)> = vec![
            ("f32 micro GEMM", None, WCompute::F32, p(WPath::Gemm)),
            ("f16 storage, GEMV", Some(&w16), WCompute::F32, p(WPath::Gemv)),
            ("f16 storage, dequantizing GEMM", Some(&w16), WCompute::F32, p(WPath::Gemm)),
            ("bf16 compute, AVX512-BF16", Some(&wb16), WCompute::Bf16, p(WPath::Bf16Dot)),
            ("bf16 compute, AMX-BF16", Some(&wb16), WCompute::Bf16, p(WPath::Amx)),
            ("bf16 compute, GEMV", Some(&wb16), WCompute::Bf16, p(WPath::Gemv)),
            ("int4 g32, GEMV", Some(&w4a), WCompute::F32, p(WPath::Gemv)),
            ("int4 g32, dequantizing GEMM", Some(&w4a), WCompute::F32, p(WPath::Gemm)),
            ("int4 g128, GEMV", Some(&w4b), WCompute::F32, p(WPath::Gemv)),
            ("int4 g128, dequantizing GEMM", Some(&w4b), WCompute::F32, p(WPath::Gemm)),
        ];
        let mut outs = vec![vec![0f32; m * n]; configs.len()];
        let spec = GemmSpec::new(m, n, k);
        let (x, pk, bias) = (&x, &pk, &bias);
        let mut cases: Vec<Case<'_>> = configs
            .iter()
            .zip(outs.iter_mut())
            .map(|(&(_, w, compute, params), c)| -> Case<'_> {
                match w {
                    None => Box::new(move || sgemm_packed(&spec, x, pk, Bias::PerCol(bias), c, &micro).expect("gemm")),
                    Some(w) => {
                        let epi = WEpilogue { bias: Some(bias), act: Activation::None };
                        Box::new(move || wgemm(x, m, w, compute, &epi, c, &params).expect("wgemm"))
                    }
                }
            })
            .collect();
        let stats = interleaved(budget, 7, &mut cases);
        drop(cases);
        let f32_time = stats[0].median;
        for ((label, w, _, _), st) in configs.iter().zip(&stats) {
            let bytes = w.map_or(4 * k * n, |w| w.bytes());
            println!(
                "| {name} | {m} {k} {n} | {label} | {:.2} MB | {:.3} | {:.2}x |",
                bytes as f64 / 1e6,
                st.median * 1e3,
                f32_time / st.median
            );
        }
    }
}
