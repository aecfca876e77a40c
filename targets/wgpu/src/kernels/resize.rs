//! `wgpu.resize`: `Resize` of f32 over the last two axes (the steps the CPU target puts on
//! `cpu.resize`: modes `nearest` with its four roundings and `linear`, the five coordinate
//! transforms, constant scales or sizes). The source taps of each output row and column are
//! computed on the host in f32 exactly as the CPU kernel maps them (so a nearest tap on a
//! half-way point picks the same pixel), uploaded once per input shape, and a thread per output
//! element blends them. Variants: workgroup size.

use super::act::{step_int, step_str};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d, upload};
use kiln_target::{Launch, Step};
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
    let a = x[plane + y0 * w + x0];
    if (LINEAR) {
        let b = x[plane + y0 * w + x1];
        let r0 = x[plane + y1 * w + x0];
        let r1 = x[plane + y1 * w + x1];
        let top = a + (b - a) * wx;
        let bottom = r0 + (r1 - r0) * wx;
        y[i] = top + (bottom - top) * wy;
    } else {
        y[i] = a;
    }
"#;

#[derive(Clone, Copy, PartialEq)]
enum Transform {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

/// Nearest with its rounding (prefer floor, prefer ceil, floor, ceil), or linear.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest(u8),
    Linear,
}

fn settings(step: &Step) -> Option<(Mode, Transform)> {
    let s = |k: &str| step_str(step, k);
    if step.attrs.contains_key("axes")
        || step_int(step, "antialias").unwrap_or(0) != 0
        || s("keep_aspect_ratio_policy").is_some_and(|p| p != "stretch")
    {
        return None;
    }
    let transform = match s("coordinate_transformation_mode").unwrap_or("half_pixel") {
        "half_pixel" => Transform::HalfPixel,
        "pytorch_half_pixel" => Transform::PytorchHalfPixel,
        "align_corners" => Transform::AlignCorners,
        "asymmetric" => Transform::Asymmetric,
        "tf_half_pixel_for_nn" => Transform::TfHalfPixelForNn,
        _ => return None,
    };
    let mode = match (s("mode").unwrap_or("nearest"), s("nearest_mode").unwrap_or("round_prefer_floor")) {
        ("nearest", "round_prefer_floor") => Mode::Nearest(0),
        ("nearest", "round_prefer_ceil") => Mode::Nearest(1),
        ("nearest", "floor") => Mode::Nearest(2),
        ("nearest", "ceil") => Mode::Nearest(3),
        ("linear", _) => Mode::Linear,
        _ => return None,
    };
    Some((mode, transform))
}

/// Constant scales (f32) or sizes (int64), as the CPU target requires them.
enum Target {
    Scales(Vec<f64>),
    Sizes(Vec<i64>),
}

fn target(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Target> {
    let get = |i: usize| step.inputs.get(i).copied().flatten().and_then(weight).filter(|t| !t.is_empty());
    match (get(2), get(3)) {
        (Some(s), None) => s.to_f64_vec().ok().map(Target::Scales),
        (None, Some(s)) => s.to_i64_vec().ok().map(Target::Sizes),
        _ => None,
    }
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> bool {
    step.domain.is_empty() && step.opset >= 11 && settings(step).is_some() && target(step, weight).is_some()
}

/// The output shape and the (h, w) scales at an input shape.
fn output(t: &Target, shape: &[usize]) -> Result<(Vec<usize>, [f64; 2]), String> {
    let r = shape.len();
    if r < 2 {
        return Err(format!("X must have rank >= 2, got {shape:?}"));
    }
    let (h, w) = (shape[r - 2], shape[r - 1]);
    let mut out = shape.to_vec();
    let scale = match t {
        Target::Scales(v) => {
            if v.len() != r || v[..r - 2].iter().any(|&s| s != 1.0) || v.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
                return Err(format!("scales {v:?} must be positive, one per axis, and 1 for all but the last two"));
            }
            out[r - 2] = (h as f64 * v[r - 2]).floor() as usize;
            out[r - 1] = (w as f64 * v[r - 1]).floor() as usize;
            [v[r - 2], v[r - 1]]
        }
        Target::Sizes(v) => {
            let sizes: Vec<usize> =
                v.iter().map(|&s| usize::try_from(s)).collect::<Result<_, _>>().map_err(|_| format!("sizes {v:?} are negative"))?;
            if sizes.len() != r || sizes[..r - 2] != shape[..r - 2] {
                return Err(format!("sizes {v:?} must keep all but the last two axes of {shape:?}"));
            }
            out = sizes;
            [out[r - 2] as f64 / h.max(1) as f64, out[r - 1] as f64 / w.max(1) as f64]
        }
    };
    Ok((out, scale))
}

/// Per output position along one axis: (first tap, second tap, weight of the second) as the
/// shader reads them. f32 coordinate math as in the CPU kernel and the reference executor.
fn taps(mode: Mode, tr: Transform, input: usize, output: usize, scale: f64, into: &mut Vec<f32>) {
    let last = input.saturating_sub(1) as f64;
    let exact = scale * input as f64;
    let resized = if (exact - output as f64).abs() < 1e-9 { output as f32 } else { exact as f32 };
    let (sc, len) = (scale as f32, input as f32);
    for o in 0..output {
        let x = o as f32;
        let v = f64::from(match tr {
            Transform::HalfPixel => (x + 0.5) / sc - 0.5,
            Transform::PytorchHalfPixel if output > 1 => (x + 0.5) / sc - 0.5,
            Transform::AlignCorners if output > 1 => x * (len - 1.0) / (resized - 1.0),
            Transform::PytorchHalfPixel | Transform::AlignCorners => 0.0,
            Transform::Asymmetric => x / sc,
            Transform::TfHalfPixelForNn => (x + 0.5) / sc,
        });
        let at = |i: f64| f32::from_bits(i.clamp(0.0, last) as u32);
        let (a, b, wgt) = match mode {
            Mode::Nearest(rounding) => {
                let half = v.fract().abs() == 0.5;
                let i = match (rounding, half) {
                    (0, true) => v.floor(),
                    (1, true) => v.ceil(),
                    (0 | 1, false) => v.round(),
                    (2, _) => v.floor(),
                    _ => v.ceil(),
                };
                (at(i), at(i), 0.0)
            }
            Mode::Linear => (at(v.floor()), at(v.floor() + 1.0), (v - v.floor()) as f32),
        };
        into.extend([a, b, wgt]);
    }
}

pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>], weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Launch> {
    let (out, _) = output(&target(step, weight)?, shapes.first()?.as_ref()?).ok()?;
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(out.iter().product(), wg), block: [wg, 1, 1], shared_bytes: 0 })
}

pub struct Resize {
    pipeline: wgpu::ComputePipeline,
    mode: Mode,
    transform: Transform,
    target: Target,
    wg: u32,
    /// The taps of the last input shape.
    taps: Mutex<Option<(Vec<usize>, GpuTensor)>>,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let (mode, transform) = settings(step).ok_or("unsupported Resize attributes")?;
    let target = target(step, cx.weight).ok_or("exactly one of scales and sizes must be a constant")?;
    let body = SOURCE.replace("LINEAR", &(mode == Mode::Linear).to_string());
    let (p, wg) = super::per_element(cx.gpu, KERNEL, &step.variant, &[("x", "f32"), ("taps", "u32")], 0, &body)?;
    Ok(Box::new(Resize { pipeline: p, mode, transform, target, wg, taps: Mutex::new(None) }))
}

impl GpuKernel for Resize {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let (out, scale) = output(&self.target, &x.shape)?;
        let r = out.len();
        let (h, w, oh, ow) = (x.shape[r - 2], x.shape[r - 1], out[r - 2], out[r - 1]);
        let y = cx.pool.take(cx.gpu, &out).map_err(|e| e.to_string())?;
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
                taps(self.mode, self.transform, h, oh, scale[0], &mut v);
                taps(self.mode, self.transform, w, ow, scale[1], &mut v);
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
