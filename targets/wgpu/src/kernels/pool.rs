//! `wgpu.pool`: 2-D `MaxPool` (without the Indices output) and `AveragePool` of f32 NCHW
//! images, which the CPU target leaves to the reference kernel: kernel shape, strides,
//! dilations (MaxPool only), pads or any auto_pad, ceil_mode, count_include_pad. The window
//! geometry is worked out on the host as the reference executor does; a thread per output
//! element walks its window. Variants: workgroup size.

use super::act::{step_int, step_ints, step_str};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d};
use kiln_target::{Launch, Step};

pub const KERNEL: &str = "wgpu.pool";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [total, H, W, OH, OW, KH, KW, sh, sw, dh, dw, pad top, pad left, count limit h, count
// limit w, count_include_pad]
const SOURCE: &str = r#"
    let H = i32(P(1u)); let Wd = i32(P(2u)); let OH = P(3u); let OW = P(4u);
    let KH = i32(P(5u)); let KW = i32(P(6u));
    let ox = i32(i % OW); let oy = i32((i / OW) % OH);
    let base = (i / (OW * OH)) * u32(H * Wd);
    let y0 = oy * i32(P(7u)) - i32(P(11u));
    let x0 = ox * i32(P(8u)) - i32(P(12u));
    let dh = i32(P(9u)); let dw = i32(P(10u));
    var acc = 0.0f;
    var seen = 0u;
    for (var kh = 0; kh < KH; kh = kh + 1) {
        let iy = y0 + kh * dh;
        if (iy < 0 || iy >= H) { continue; }
        for (var kw = 0; kw < KW; kw = kw + 1) {
            let ix = x0 + kw * dw;
            if (ix < 0 || ix >= Wd) { continue; }
            let v = f32(x[base + u32(iy * Wd + ix)]);
            if (MAX) {
                // The first tap in the image, then only larger ones (the reference's order).
                if (seen == 0u || v > acc) { acc = v; }
            } else {
                acc = acc + v;
            }
            seen = seen + 1u;
        }
    }
    if (MAX) {
        if (seen == 0u) { acc = bitcast<f32>(0xff800000u); }
    } else {
        var count = f32(seen);
        if (P(15u) == 1u) {
            // Taps inside the image or its padding (not past the end padding).
            let ch = min(KH, i32(P(13u)) - oy * i32(P(7u)));
            let cw = min(KW, i32(P(14u)) - ox * i32(P(8u)));
            count = f32(max(ch, 0) * max(cw, 0));
        }
        acc = acc / count;
    }
    y[i] = to_st(acc);
"#;

/// The window attributes of a step.
struct Attrs {
    max: bool,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    pads: Option<[usize; 4]>,
    auto_pad: String,
    ceil: bool,
    count_pad: bool,
}

fn two(v: Option<Vec<i64>>, default: usize) -> Option<[usize; 2]> {
    match v.as_deref() {
        None => Some([default; 2]),
        Some(&[a, b]) if a >= 1 && b >= 1 => Some([a as usize, b as usize]),
        _ => None,
    }
}

fn attrs(step: &Step) -> Option<Attrs> {
    let max = match step.op.as_str() {
        "MaxPool" => true,
        "AveragePool" => false,
        _ => return None,
    };
    let storage_order = step_int(step, "storage_order").unwrap_or(0);
    let pads = match step_ints(step, "pads").as_deref() {
        None => None,
        Some(&[t, l, b, r]) if [t, l, b, r].iter().all(|&p| p >= 0) => Some([t as usize, l as usize, b as usize, r as usize]),
        Some(_) => return None,
    };
    let a = Attrs {
        max,
        kernel: two(step_ints(step, "kernel_shape"), 0).filter(|k| k[0] >= 1)?,
        strides: two(step_ints(step, "strides"), 1)?,
        dilations: two(step_ints(step, "dilations"), 1)?,
        pads,
        auto_pad: step_str(step, "auto_pad").unwrap_or("NOTSET").to_string(),
        ceil: step_int(step, "ceil_mode").unwrap_or(0) != 0,
        count_pad: step_int(step, "count_include_pad").unwrap_or(0) != 0,
    };
    // An average over a dilated window counts its padding another way: left to the reference.
    let ok = step.domain.is_empty()
        && storage_order == 0
        && matches!(a.auto_pad.as_str(), "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER")
        && (max || a.dilations == [1, 1]);
    ok.then_some(a)
}

/// MaxPool with only its first output, AveragePool: 2-D window attributes this kernel runs.
/// `f32` says whether a plan value is f32 (these steps come from the reference kernel).
pub fn covers(step: &Step, f32: &dyn Fn(usize) -> bool) -> bool {
    let one_output = step.outputs.len() == 1 || step.outputs.iter().skip(1).all(Option::is_none);
    let input_f32 = step.inputs.first().copied().flatten().is_some_and(f32);
    one_output && input_f32 && step.inputs.len() == 1 && attrs(step).is_some()
}

/// Per axis: (output size, pad before, count limit: padded extent windows may count).
fn axis(a: &Attrs, d: usize, input: usize) -> Result<(usize, usize, usize), String> {
    let (k, s) = (a.kernel[d], a.strides[d]);
    let eff = (k - 1) * a.dilations[d] + 1;
    let size = |span: usize| if a.ceil { span.div_ceil(s) + 1 } else { span / s + 1 };
    match a.auto_pad.as_str() {
        "VALID" => {
            let span = input.checked_sub(eff).ok_or_else(|| format!("window {eff} is larger than the input {input}"))?;
            Ok((size(span), 0, input))
        }
        "SAME_UPPER" | "SAME_LOWER" => {
            let out = input.div_ceil(s);
            let total = ((out.max(1) - 1) * s + eff).saturating_sub(input);
            let begin = if a.auto_pad == "SAME_UPPER" { total / 2 } else { total - total / 2 };
            Ok((out, begin, input + total))
        }
        _ => {
            let (b, e) = a.pads.map_or((0, 0), |p| (p[d], p[d + 2]));
            let total = input + b + e;
            let span = total.checked_sub(eff).ok_or_else(|| format!("window {eff} is larger than the padded input {total}"))?;
            let mut out = size(span);
            // A window may not start in the end padding (it would see no input).
            if a.ceil && (out - 1) * s >= input + b {
                out -= 1;
            }
            Ok((out, b, total))
        }
    }
}

/// (output shape, parameters) at input shape `x`.
fn problem(a: &Attrs, x: &[usize]) -> Result<(Vec<usize>, Vec<u32>), String> {
    let &[n, c, h, w] = x else { return Err(format!("X must be 4-D (NCHW), got {x:?}")) };
    let ((oh, pt, lh), (ow, pl, lw)) = (axis(a, 0, h)?, axis(a, 1, w)?);
    let out = vec![n, c, oh, ow];
    let total: usize = out.iter().product();
    let p = [
        total,
        h,
        w,
        oh,
        ow,
        a.kernel[0],
        a.kernel[1],
        a.strides[0],
        a.strides[1],
        a.dilations[0],
        a.dilations[1],
        pt,
        pl,
        lh,
        lw,
        a.count_pad as usize,
    ];
    Ok((out, p.iter().map(|&v| v as u32).collect()))
}

pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let (out, _) = problem(&attrs(step)?, shapes.first()?.as_ref()?).ok()?;
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(out.iter().product(), wg), block: [wg, 1, 1], shared_bytes: 0 })
}

pub struct Pooling {
    pipeline: wgpu::ComputePipeline,
    attrs: Attrs,
    wg: u32,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let attrs = attrs(step).ok_or("unsupported pooling attributes")?;
    let body = SOURCE.replace("MAX", &attrs.max.to_string());
    let (p, wg) = super::per_element(cx.gpu, KERNEL, &step.variant, super::precision(step)?, &[("x", "ST")], 0, &body)?;
    Ok(Box::new(Pooling { pipeline: p, attrs, wg }))
}

impl GpuKernel for Pooling {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("X is missing")?;
        let (out, params) = problem(&self.attrs, &x.shape)?;
        let y = cx.output(&out)?;
        let total: usize = out.iter().product();
        if total > 0 {
            dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &y.buf], groups_1d(total, self.wg))?;
        }
        Ok(y)
    }
}
