//! Fused elementwise chain, softmax, layer norm and attention timings.

use std::time::Duration;

use kiln_target_cpu::kernels::{
    Activation, AttentionParams, AttentionSpec, Binary, ChainParams, GemmParams, Isa, Mask, Operand, RowParams, Step, Unary, attention,
    layer_norm, run_chain, softmax,
};

use crate::timing::time_median;

fn data(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0).collect()
}

pub fn run(max_threads: usize, quick: bool) {
    let budget = Duration::from_millis(if quick { 100 } else { 400 });
    println!("\n## Fused kernels (median)");
    println!("| kernel | shape | isa | threads | us | GB/s or GFLOP/s |");
    println!("|---|---|---|---|---|---|");
    let (rows, cols) = (128, 3072);
    let x = data(rows * cols);
    let scale = data(cols);
    let shift = data(cols);
    let mut out = vec![0.0f32; x.len()];
    let chain = [
        Step::binary(Binary::Mul, Operand::Row(&scale)),
        Step::binary(Binary::Add, Operand::Row(&shift)),
        Step::unary(Unary::Act(Activation::Gelu)),
    ];
    let bytes = 2.0 * 4.0 * x.len() as f64;
    for isa in Isa::available() {
        for threads in 1..=max_threads {
            let p = ChainParams { tile: 1024, threads, isa };
            let secs = time_median(budget, 5, || run_chain(&x, cols, &chain, &mut out, &p).expect("chain"));
            println!("| chain x*row+row, gelu | {rows}x{cols} | {isa} | {threads} | {:.1} | {:.1} GB/s |", secs * 1e6, bytes / secs / 1e9);
        }
    }
    // The same work as three separate passes (what an unfused executor does).
    let p = ChainParams { tile: 1024, threads: 1, isa: Isa::best() };
    let secs = time_median(budget, 5, || {
        for step in &chain {
            let src = out.clone();
            run_chain(&src, cols, std::slice::from_ref(step), &mut out, &p).expect("chain");
        }
    });
    println!("| same, 3 unfused passes (+copies) | {rows}x{cols} | {} | 1 | {:.1} | - |", Isa::best(), secs * 1e6);

    let (srows, slen) = (12 * 128, 128);
    let sx = data(srows * slen);
    let mut sout = vec![0.0f32; sx.len()];
    let ln_x = data(128 * 768);
    let gamma = data(768);
    let beta = data(768);
    let mut ln_out = vec![0.0f32; ln_x.len()];
    for isa in Isa::available() {
        for threads in 1..=max_threads {
            let p = RowParams { threads, isa };
            let secs = time_median(budget, 5, || softmax(&sx, slen, &mut sout, &p).expect("softmax"));
            println!(
                "| softmax | {srows}x{slen} | {isa} | {threads} | {:.1} | {:.1} GB/s |",
                secs * 1e6,
                8.0 * sx.len() as f64 / secs / 1e9
            );
            let secs = time_median(budget, 5, || layer_norm(&ln_x, 768, Some(&gamma), Some(&beta), 1e-5, &mut ln_out, &p).expect("ln"));
            println!("| layer_norm | 128x768 | {isa} | {threads} | {:.1} | {:.1} GB/s |", secs * 1e6, 8.0 * ln_x.len() as f64 / secs / 1e9);
        }
    }

    for (name, spec) in [
        ("bert-base b1 h12 s128 d64", AttentionSpec::new(1, 12, 128, 128, 64)),
        ("causal b1 h12 s512 d64", AttentionSpec::new(1, 12, 512, 512, 64).causal(true)),
    ] {
        let q = data(spec.batch * spec.heads * spec.seq_q * spec.head_dim);
        let k = data(spec.batch * spec.heads * spec.seq_k * spec.head_dim);
        let v = data(spec.batch * spec.heads * spec.seq_k * spec.head_dim_v);
        let mut o = vec![0.0f32; q.len()];
        for threads in 1..=max_threads {
            for q_block in [64, 0] {
                let p = AttentionParams { q_block, transpose_k: false, gemm: GemmParams::default().threads(threads) };
                let secs = time_median(budget, 5, || attention(&spec, &q, &k, &v, Mask::None, &mut o, &p).expect("attention"));
                println!(
                    "| attention (q_block {q_block}) | {name} | {} | {threads} | {:.1} | {:.1} GFLOP/s |",
                    Isa::best(),
                    secs * 1e6,
                    spec.flops() / secs / 1e9
                );
            }
        }
    }
}
