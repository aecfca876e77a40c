//! `wgpu.batchnorm`: inference `BatchNormalization` with constant statistics that no
//! convolution absorbed (the steps the CPU target puts on `cpu.batchnorm`), folded at load
//! into one multiply-add per channel (`scale / sqrt(var + eps)`, `B - mean * that`, as the CPU
//! kernel folds it), a thread per element. Variants: workgroup size.

use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d, upload};
use kiln_target::{Launch, Step};
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.batchnorm";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [n, channels, inner]
const SOURCE: &str = r#"
    let c = (i / P(2u)) % P(1u);
    y[i] = to_st(f32(x[i]) * mul[c] + add[c]);
"#;

/// The per-channel multiplier and addend, or why the step cannot be folded (the CPU
/// target's own fold, so both sides agree).
fn fold(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<(Vec<f32>, Vec<f32>), String> {
    kiln_target_cpu::steps::fold_batchnorm(step, weight)
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> bool {
    step.domain.is_empty() && step.outputs.iter().filter(|o| o.is_some()).count() == 1 && fold(step, weight).is_ok()
}

pub struct BatchNorm {
    pipeline: wgpu::ComputePipeline,
    channels: usize,
    mul: GpuTensor,
    add: GpuTensor,
    wg: u32,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let (mul, add) = fold(step, cx.weight)?;
    let (p, wg) = super::per_element(
        cx.gpu,
        KERNEL,
        &step.variant,
        super::precision(step)?,
        &[("x", "ST"), ("mul", "f32"), ("add", "f32")],
        0,
        SOURCE,
    )?;
    let c = mul.len();
    Ok(Box::new(BatchNorm { pipeline: p, channels: c, mul: upload(cx.gpu, &mul, &[c]), add: upload(cx.gpu, &add, &[c]), wg }))
}

pub fn launch(variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let n: usize = shapes.first()?.as_ref()?.iter().product();
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(n, wg), block: [wg, 1, 1], shared_bytes: 0 })
}

impl GpuKernel for BatchNorm {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        if x.shape.len() < 2 || x.shape[1] != self.channels {
            return Err(format!("X has shape {:?}; dimension 1 must be the {} channels", x.shape, self.channels));
        }
        let y = cx.output(&x.shape)?;
        let n = x.len();
        let inner: usize = x.shape[2..].iter().product();
        if n == 0 {
            return Ok(y);
        }
        let params = [n as u32, self.channels as u32, inner as u32];
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &self.mul.buf, &self.add.buf, &y.buf], groups_1d(n, self.wg))?;
        Ok(y)
    }
}
