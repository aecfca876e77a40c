//! GEMM and convolution microbenchmarks on the adapter (`wgpu.matmul` / `wgpu.conv2d`, every
//! variant the adapter's limits allow), for `kiln bench` and the tests: the measured rate, and
//! its share of a peak figure when the caller has one for the device.

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
    let ins = [upload(&g, &a, &[m, k]), upload(&g, &b, &[k, n])];
    figures(&g, kernels::matmul::KERNEL, "MatMul", Default::default(), &ins, 2.0 * (m * n * k) as f64, runs)
}

/// Times a `kh x kw` convolution of an NCHW `[n, c, h, w]` input into `o` channels (stride 1,
/// no padding, `groups` groups) for every `wgpu.conv2d` variant that fits the adapter: the
/// direct kernel (`wg*`) against the implicit GEMM (`i*`).
pub fn conv2d(x: [usize; 4], o: usize, k: [usize; 2], groups: usize, runs: usize) -> Result<Vec<GemmFigure>, WgpuError> {
    let g = gpu()?;
    let [n, c, h, w] = x;
    let cg = c / groups.max(1);
    let xs: Vec<f32> = (0..n * c * h * w).map(|i| (i % 13) as f32 * 0.1).collect();
    let ws: Vec<f32> = (0..o * cg * k[0] * k[1]).map(|i| (i % 7) as f32 * 0.1).collect();
    let ins = [upload(&g, &xs, &x), upload(&g, &ws, &[o, cg, k[0], k[1]])];
    let attrs = [("group".to_string(), kiln_target::AttrValue::Int(groups as i64))].into();
    let out = n * o * (h + 1).saturating_sub(k[0]) * (w + 1).saturating_sub(k[1]);
    figures(&g, kernels::conv::KERNEL, "Conv", attrs, &ins, 2.0 * (out * cg * k[0] * k[1]) as f64, runs)
}

/// Times every variant of `kernel` that fits the adapter on `ins` (median of `runs` after a
/// warm-up; each run records, submits and waits).
fn figures(
    g: &crate::device::Gpu,
    kernel: &str,
    op: &str,
    attrs: std::collections::BTreeMap<String, kiln_target::AttrValue>,
    ins: &[crate::runtime::GpuTensor],
    flops: f64,
    runs: usize,
) -> Result<Vec<GemmFigure>, WgpuError> {
    let mut pool = Pool::default();
    let mut out = Vec::new();
    let refs: Vec<_> = ins.iter().map(Some).collect();
    for v in kernels::variants(kernel) {
        if !crate::tune::fits(g, kernel, v) {
            continue;
        }
        let step = Step {
            node: kernel.into(),
            op: op.into(),
            domain: String::new(),
            kernel: kernel.into(),
            variant: v.to_string(),
            inputs: (0..ins.len()).map(Some).collect(),
            outputs: vec![Some(ins.len())],
            attrs: attrs.clone(),
            opset: 17,
            launch: None,
        };
        let k_ = kernels::load(&step, &KernelCtx { gpu: g, weight: &|_| None }).map_err(|reason| WgpuError::Shader {
            kernel: step.kernel.clone(),
            variant: v.to_string(),
            reason,
        })?;
        let mut times = Vec::new();
        for r in 0..=runs.max(1) {
            let t = Instant::now();
            let mut enc = encoder(g);
            let y = k_
                .encode(&mut Encoded { gpu: g, pool: &mut pool, enc: &mut enc, host: &[], float: crate::runtime::Float::F32 }, &refs)
                .map_err(WgpuError::Readback)?;
            finish(g, enc)?;
            pool.give(y);
            if r > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let s = times[times.len() / 2];
        out.push(GemmFigure { variant: v.to_string(), seconds: s, gflops: flops / s / 1e9 });
    }
    Ok(out)
}
