//! `wgpu.resize`: `Resize` of f32 over the last two axes (the steps the CPU target puts on
//! `cpu.resize`: modes `nearest` with its four roundings and `linear`, the five coordinate
//! transforms, constant scales or sizes). The source taps of each output row and column are
//! computed on the host by the CPU kernel's own code (`kiln_target_cpu::steps`, so a nearest
//! tap on a half-way point picks the same pixel), uploaded once per input shape, and a thread per output
//! element blends them. Variants: workgroup size.

use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d, upload};
use kiln_target::{Launch, Step};
use kiln_target_cpu::steps::{ResizeSettings, ResizeTarget, resize_taps};
use kiln_tensor::Tensor;
use std::sync::Mutex;

pub const KERNEL: &str = "wgpu.resize";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [n, in h, in w, out h, out w]; taps: (first, second, weight of second) per output row,
// then per output column (u32; the weight as f32 bits).
const SOURCE: &str = r#"
    let h = P(1u);
    let w = P(2u);
    let oh = P(3u);
    let ow = P(4u);
    let ox = i % ow;
    let oy = (i / ow) % oh;
    let plane = (i / (ow * oh)) * h * w;
    let y0 = taps[oy * 3u];
    let y1 = taps[oy * 3u + 1u];
    let wy = bitcast<f32>(taps[oy * 3u + 2u]);
    let c = (oh + ox) * 3u;
    let x0 = taps[c];
    let x1 = taps[c + 1u];
    let wx = bitcast<f32>(taps[c + 2u]);
    let a = f32(x[plane + y0 * w + x0]);
    if (LINEAR) {
        let b = f32(x[plane + y0 * w + x1]);
        let r0 = f32(x[plane + y1 * w + x0]);
        let r1 = f32(x[plane + y1 * w + x1]);
        let top = a + (b - a) * wx;
        let bottom = r0 + (r1 - r0) * wx;
        y[i] = to_st(top + (bottom - top) * wy);
    } else {
        y[i] = to_st(a);
    }
"#;

fn target(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<ResizeTarget> {
    let get = |i: usize| step.inputs.get(i).copied().flatten().and_then(weight);
    ResizeTarget::of_inputs(get(2).as_ref(), get(3).as_ref()).ok()
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> bool {
    step.domain.is_empty() && step.opset >= 11 && ResizeSettings::of_step(step).is_some() && target(step, weight).is_some()
}

/// Per output position along one axis: (first tap, second tap, weight of the second) as the
/// shader reads them (taps as u32 bits): the CPU kernel's own taps.
fn taps(s: &ResizeSettings, input: usize, output: usize, scale: f64, into: &mut Vec<f32>) {
    for (a, b, w) in resize_taps(*s, input, output, scale) {
        into.extend([f32::from_bits(a as u32), f32::from_bits(b as u32), w]);
    }
}

pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>], weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Launch> {
    let (out, _) = target(step, weight)?.output(shapes.first()?.as_ref()?).ok()?;
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(out.iter().product(), wg), block: [wg, 1, 1], shared_bytes: 0 })
}

pub struct Resize {
    pipeline: wgpu::ComputePipeline,
    settings: ResizeSettings,
    target: ResizeTarget,
    wg: u32,
    /// The taps of the last input shape.
    taps: Mutex<Option<(Vec<usize>, GpuTensor)>>,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let settings = ResizeSettings::of_step(step).ok_or("unsupported Resize attributes")?;
    let target = target(step, cx.weight).ok_or("exactly one of scales and sizes must be a constant")?;
    let body = SOURCE.replace("LINEAR", &settings.is_linear().to_string());
    let (p, wg) = super::per_element(cx.gpu, KERNEL, &step.variant, super::precision(step)?, &[("x", "ST"), ("taps", "u32")], 0, &body)?;
    Ok(Box::new(Resize { pipeline: p, settings, target, wg, taps: Mutex::new(None) }))
}

impl GpuKernel for Resize {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let (out, scale) = self.target.output(&x.shape)?;
        let r = out.len();
        let (h, w, oh, ow) = (x.shape[r - 2], x.shape[r - 1], out[r - 2], out[r - 1]);
        let y = cx.output(&out)?;
        let n: usize = out.iter().product();
        if n == 0 {
            return Ok(y);
        }
        if h == 0 || w == 0 {
            return Err(format!("cannot resize the empty plane of {:?}", x.shape));
        }
        let mut cache = self.taps.lock().map_err(|_| "the taps cache is poisoned")?;
        let t = match cache.as_ref() {
            Some((s, t)) if *s == x.shape => t.clone(),
            _ => {
                let mut v = Vec::with_capacity(3 * (oh + ow));
                taps(&self.settings, h, oh, scale[0], &mut v);
                taps(&self.settings, w, ow, scale[1], &mut v);
                let t = upload(cx.gpu, &v, &[v.len()]);
                *cache = Some((x.shape.clone(), t.clone()));
                t
            }
        };
        let params = [n as u32, h as u32, w as u32, oh as u32, ow as u32];
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &t.buf, &y.buf], groups_1d(n, self.wg))?;
        Ok(y)
    }
}
