//! A GEMM microbenchmark on the adapter (`wgpu.matmul`, every variant the adapter's limits
//! allow), for `kiln bench` and the tests: the measured rate, and its share of a peak figure
//! when the caller has one for the device.

use crate::device::gpu;
use crate::error::WgpuError;
use crate::kernels::{self, Encoded, KernelCtx};
use crate::runtime::{Pool, encoder, finish, upload};
use kiln_target::Step;
use std::time::Instant;

/// One variant's measurement.
#[derive(Clone, Debug)]
pub struct GemmFigure {
    pub variant: String,
    /// Median wall time of one GEMM (dispatch, submit, wait), seconds.
    pub seconds: f64,
    pub gflops: f64,
}

/// The variants of the tiled GEMM, default first.
pub fn gemm_variants() -> &'static [&'static str] {
    kernels::matmul::VARIANTS
}

/// Times `m x k @ k x n` (f32) for each variant that fits the adapter, `runs` times each after
/// a warm-up.
pub fn gemm(m: usize, n: usize, k: usize, runs: usize) -> Result<Vec<GemmFigure>, WgpuError> {
    let g = gpu()?;
    let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let (ta, tb) = (upload(&g, &a, &[m, k]), upload(&g, &b, &[k, n]));
    let mut pool = Pool::default();
    let mut out = Vec::new();
    for v in gemm_variants() {
        if !crate::tune::fits(&g, kernels::matmul::KERNEL, v) {
            continue;
        }
        let step = Step {
            node: "gemm".into(),
            op: "MatMul".into(),
            domain: String::new(),
            kernel: kernels::matmul::KERNEL.into(),
            variant: v.to_string(),
            inputs: vec![Some(0), Some(1)],
            outputs: vec![Some(2)],
            attrs: Default::default(),
            opset: 17,
            launch: None,
        };
        let k_ = kernels::load(&step, &KernelCtx { gpu: &g, weight: &|_| None }).map_err(|reason| WgpuError::Shader {
            kernel: step.kernel.clone(),
            variant: v.to_string(),
            reason,
        })?;
        let mut times = Vec::new();
        for r in 0..=runs.max(1) {
            let t = Instant::now();
            let mut enc = encoder(&g);
            let y = k_.encode(&mut Encoded { gpu: &g, pool: &mut pool, enc: &mut enc }, &[Some(&ta), Some(&tb)]).map_err(WgpuError::Readback)?;
            finish(&g, enc)?;
            pool.give(y);
            if r > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let s = times[times.len() / 2];
        out.push(GemmFigure { variant: v.to_string(), seconds: s, gflops: 2.0 * (m * n * k) as f64 / s / 1e9 });
    }
    Ok(out)
}
