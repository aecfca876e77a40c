//! Ad-hoc probe used while tuning: softmax and attention.

use std::time::Duration;

use kiln_target_cpu::kernels::{AttentionParams, AttentionSpec, GemmParams, Mask, RowParams, attention, softmax};

use crate::timing::time_median;

pub fn run() {
    let (rows, len) = (12 * 128, 128);
    let x: Vec<f32> = (0..rows * len).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0).collect();
    let mut out = vec![0.0f32; x.len()];
    let p = RowParams::default();
    let secs = time_median(Duration::from_millis(200), 5, || softmax(&x, len, &mut out, &p).expect("softmax"));
    println!("softmax {:.3} ns/elem", secs * 1e9 / x.len() as f64);
    let spec = AttentionSpec::new(1, 12, 512, 512, 64).causal(true);
    let q: Vec<f32> = (0..12 * 512 * 64).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let mut o = vec![0.0f32; q.len()];
    let mut outs = vec![o.clone(), o.clone(), o.clone(), o];
    let params: Vec<AttentionParams> = [(64, false), (64, true), (128, false), (128, true)]
        .iter()
        .map(|&(q_block, transpose_k)| AttentionParams { q_block, transpose_k, gemm: GemmParams::default() })
        .collect();
    let mut cases: Vec<crate::timing::Case<'_>> = params
        .iter()
        .zip(outs.iter_mut())
        .map(|(p, o)| {
            let (spec, q) = (&spec, &q);
            Box::new(move || attention(spec, q, q, q, Mask::None, o, p).expect("att")) as crate::timing::Case<'_>
        })
        .collect();
    let stats = crate::timing::interleaved(Duration::from_millis(6000), 10, &mut cases);
    for (p, st) in params.iter().zip(stats) {
        println!("causal attention q_block {} transpose_k {}: median {:.3} ms best {:.3} ms", p.q_block, p.transpose_k, st.median * 1e3, st.min * 1e3);
    }
}
