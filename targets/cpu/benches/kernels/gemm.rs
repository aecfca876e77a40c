//! GEMM GFLOP/s at 1 and 2 threads against the measured FMA peak.

use std::time::Duration;

use kiln_target_cpu::kernels::{
    Bias, GemmBackend, GemmParams, GemmSpec, Isa, PackedLayout, pack_b, packed_layout_for, sgemm, sgemm_packed,
};

use crate::timing::{Case, interleaved};

/// (label, threads, the call writing C).
type Variant = (String, usize, Box<dyn Fn(&mut [f32])>);

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect()
}

pub fn run(peaks: &[f64], quick: bool, sweep: bool, only: Option<&str>) {
    let custom = only.and_then(parse_mnk);
    let fixed: &[(&str, usize, usize, usize)] = &[
        ("cube 128", 128, 128, 128),
        ("cube 512", 512, 512, 512),
        ("cube 1024", 1024, 1024, 1024),
        ("bert-mini ffn1", 128, 1536, 384),
        ("bert-mini ffn2", 128, 384, 1536),
        ("bert-mini qkv", 128, 1152, 384),
        ("bert-base ffn1", 128, 3072, 768),
        ("bert-base ffn2", 128, 768, 3072),
        ("bert-base proj", 128, 768, 768),
    ];
    let shapes: Vec<(&str, usize, usize, usize)> = match custom {
        Some((m, n, k)) => vec![("custom", m, n, k)],
        None => fixed.iter().copied().filter(|(name, ..)| only.is_none_or(|o| name.contains(o))).collect(),
    };
    let budget = Duration::from_millis(if quick { 300 } else { 2000 });
    println!("\n## GEMM f32, row-major C = A B (ms and GFLOP/s: median / best of interleaved samples)");
    println!("% of peak uses the best measured FMA peak for that thread count.\n");
    println!("| shape | m n k | variant | threads | median ms | GFLOP/s median | GFLOP/s best | % peak median | % peak best |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, m, n, k) in shapes {
        let spec = GemmSpec::new(m, n, k);
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        // Weights stored [n, k] (ONNX Gemm transB=1 / PyTorch Linear), unpacked and pre-packed.
        let bt = data(n * k, 3);
        let packed = pack_b(&bt, k, n, true, 0, PackedLayout::RowMajor).expect("pack");
        let mut variants: Vec<Variant> = Vec::new();
        let lib = GemmParams { backend: GemmBackend::Library, ..GemmParams::default() };
        let micro = GemmParams { backend: GemmBackend::Micro, ..lib };
        let panel = packed_layout_for(&micro, n);
        let pk_panel = pack_b(&b, k, n, false, 0, panel).expect("pack");
        for threads in 1..=peaks.len() {
            let p = lib.threads(threads);
            let (a2, b2) = (a.clone(), b.clone());
            variants.push(("gemm crate".into(), threads, Box::new(move |c| sgemm(&spec, &a2, &b2, Bias::None, c, &p).expect("gemm"))));
            let p = micro.threads(threads);
            let (a2, b2) = (a.clone(), b.clone());
            variants.push((
                "micro, B unpacked".into(),
                threads,
                Box::new(move |c| sgemm(&spec, &a2, &b2, Bias::None, c, &p).expect("gemm")),
            ));
            let (a2, pk) = (a.clone(), pk_panel.clone());
            variants.push((
                format!("micro, B pre-packed {panel:?}"),
                threads,
                Box::new(move |c| sgemm_packed(&spec, &a2, &pk, Bias::None, c, &p).expect("gemm")),
            ));
        }
        if sweep {
            for nr in [16, 32, 48, 64] {
                let layout = PackedLayout::Panel { nr };
                let pk = pack_b(&b, k, n, false, 0, layout).expect("pack");
                for isa in Isa::available() {
                    let p = GemmParams { isa, ..micro };
                    let (a2, pk) = (a.clone(), pk.clone());
                    variants.push((
                        format!("micro {isa}, pre-packed {layout:?}"),
                        1,
                        Box::new(move |c| sgemm_packed(&spec, &a2, &pk, Bias::None, c, &p).expect("gemm")),
                    ));
                }
            }
        }
        if m < 1024 && !sweep {
            let (a2, b2) = (a.clone(), b.clone());
            let p = GemmParams { backend: GemmBackend::Blocked, threads: 1, isa: Isa::best() };
            variants.push((
                format!("blocked ({})", Isa::best()),
                1,
                Box::new(move |c| sgemm(&spec, &a2, &b2, Bias::None, c, &p).expect("gemm")),
            ));
        }
        if name.starts_with("bert") && !sweep {
            let (a2, bt2) = (a.clone(), bt.clone());
            let st = spec.trans(false, true);
            variants.push((
                "gemm crate, B as [n,k]".into(),
                1,
                Box::new(move |c| sgemm(&st, &a2, &bt2, Bias::None, c, &lib).expect("gemm")),
            ));
            let (a2, pk) = (a.clone(), packed.clone());
            variants.push((
                "gemm crate, B as [n,k] pre-packed RowMajor".into(),
                1,
                Box::new(move |c| sgemm_packed(&spec, &a2, &pk, Bias::None, c, &lib).expect("gemm")),
            ));
            let (a2, bt2) = (a.clone(), bt.clone());
            let p = micro;
            variants.push((
                "micro, B as [n,k] unpacked".into(),
                1,
                Box::new(move |c| sgemm(&st, &a2, &bt2, Bias::None, c, &p).expect("gemm")),
            ));
        }
        let mut outs: Vec<Vec<f32>> = variants.iter().map(|_| vec![0.0f32; m * n]).collect();
        let mut cases: Vec<Case<'_>> =
            variants.iter().zip(outs.iter_mut()).map(|((_, _, f), c)| Box::new(move || f(c)) as Case<'_>).collect();
        let stats = interleaved(budget, 5, &mut cases);
        for ((label, threads, _), st) in variants.iter().zip(stats) {
            let peak = peaks[threads - 1];
            let (gm, gb) = (spec.flops() / st.median / 1e9, spec.flops() / st.min / 1e9);
            println!(
                "| {name} | {m} {n} {k} | {label} | {threads} | {:.3} | {gm:.1} | {gb:.1} | {:.0}% | {:.0}% |",
                st.median * 1e3,
                100.0 * gm / peak,
                100.0 * gb / peak
            );
        }
    }
}

/// `--shape=MxNxK`: one custom shape.
fn parse_mnk(s: &str) -> Option<(usize, usize, usize)> {
    let v: Vec<usize> = s.split('x').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    match v[..] {
        [m, n, k] => Some((m, n, k)),
        _ => None,
    }
}
