//! `wgpu.conv_transpose`: 2-D `ConvTranspose` with constant weights `[C, O/groups, KH, KW]`
//! (the steps the CPU target puts on `cpu.conv_transpose`: NCHW, strides, dilations, pads,
//! output_padding, groups; an `output_shape` or SAME auto-padding stays on the CPU), as a
//! gather: a thread per output element sums the input pixels whose window covers it, bias
//! first. Variants: workgroup size.

use super::act::{step_ints, step_str};
use super::conv::{Geo, geo};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d, upload};
use kiln_target::{Launch, Step};
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.conv_transpose";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [N, C, H, W, O, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, groups, has_bias, total]
const SOURCE: &str = r#"
    let C = P(1u); let H = i32(P(2u)); let Wd = i32(P(3u)); let O = P(4u); let OH = P(5u); let OW = P(6u);
    let KH = P(7u); let KW = P(8u); let sh = i32(P(9u)); let sw = i32(P(10u)); let dh = i32(P(11u)); let dw = i32(P(12u));
    let pt = i32(P(13u)); let pl = i32(P(14u)); let groups = P(15u);
    let ox = i % OW; let oy = (i / OW) % OH; let o = (i / (OW * OH)) % O; let n = i / (OW * OH * O);
    let cg = C / groups;
    let og = O / groups;
    let c0 = (o / og) * cg;
    let ol = o % og;
    var acc = 0.0f;
    if (P(16u) == 1u) { acc = f32(bias[o]); }
    for (var kh = 0u; kh < KH; kh = kh + 1u) {
        let ty = i32(oy) + pt - i32(kh) * dh;
        if (ty < 0 || ty % sh != 0 || ty / sh >= H) { continue; }
        let iy = u32(ty / sh);
        for (var kw = 0u; kw < KW; kw = kw + 1u) {
            let tx = i32(ox) + pl - i32(kw) * dw;
            if (tx < 0 || tx % sw != 0 || tx / sw >= Wd) { continue; }
            let ix = u32(tx / sw);
            for (var c = 0u; c < cg; c = c + 1u) {
                let xi = ((n * C + c0 + c) * u32(H) + iy) * u32(Wd) + ix;
                acc = acc + f32(x[xi] * w[(((c0 + c) * og + ol) * KH + kh) * KW + kw]);
            }
        }
    }
    y[i] = to_st(acc);
"#;

/// The attributes, when this kernel runs them.
fn attrs(step: &Step) -> Option<(Geo, [usize; 2])> {
    if step.attrs.contains_key("output_shape") || !matches!(step_str(step, "auto_pad"), None | Some("NOTSET") | Some("VALID")) {
        return None;
    }
    let g = geo(step).filter(|g| !g.nhwc)?;
    let op = match step_ints(step, "output_padding").as_deref() {
        None => [0, 0],
        Some(&[a, b]) if a >= 0 && b >= 0 => [a as usize, b as usize],
        Some(_) => return None,
    };
    Some((g, op))
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> bool {
    let w = step.inputs.get(1).copied().flatten().and_then(weight);
    step.domain.is_empty() && attrs(step).is_some() && w.is_some_and(|w| w.rank() == 4)
}

/// Output height and width, or why the input is too small.
fn out_hw(g: &Geo, op: [usize; 2], hw: [usize; 2], k: [usize; 2]) -> Result<[usize; 2], String> {
    let one = |i: usize| {
        let full = hw[i].checked_sub(1).map(|h| g.strides[i] * h + op[i] + (k[i].max(1) - 1) * g.dilations[i] + 1);
        full.and_then(|f| f.checked_sub(g.pads[i] + g.pads[i + 2]))
            .ok_or_else(|| format!("input {hw:?} is too small for this ConvTranspose"))
    };
    Ok([one(0)?, one(1)?])
}

/// (output shape, parameters) at input shape `x` and weight shape `w`.
fn problem(g: &Geo, op: [usize; 2], x: &[usize], w: &[usize], has_bias: bool) -> Result<(Vec<usize>, Vec<u32>), String> {
    let &[n, c, h, wd] = x else { return Err(format!("X must be 4-D, got {x:?}")) };
    let &[wc, og, kh, kw] = w else { return Err(format!("W must be 4-D, got {w:?}")) };
    if wc != c || c % g.groups != 0 {
        return Err(format!("X has {c} channels; W {w:?} in {} groups expects {wc}", g.groups));
    }
    let [oh, ow] = out_hw(g, op, [h, wd], [kh, kw])?;
    let o = og * g.groups;
    let out = vec![n, o, oh, ow];
    let total: usize = out.iter().product();
    let [sh, sw] = g.strides;
    let [dh, dw] = g.dilations;
    let p = [n, c, h, wd, o, oh, ow, kh, kw, sh, sw, dh, dw, g.pads[0], g.pads[1], g.groups, has_bias as usize, total];
    Ok((out, p.iter().map(|&v| v as u32).collect()))
}

pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let (g, op) = attrs(step)?;
    let (out, _) = problem(&g, op, shapes.first()?.as_ref()?, shapes.get(1)?.as_ref()?, false).ok()?;
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(out.iter().product(), wg), block: [wg, 1, 1], shared_bytes: 0 })
}

pub struct ConvTranspose {
    pipeline: wgpu::ComputePipeline,
    geo: Geo,
    output_padding: [usize; 2],
    wg: u32,
    dummy: GpuTensor,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let (geo, output_padding) = attrs(step).ok_or("unsupported ConvTranspose attributes")?;
    let (p, wg) = super::per_element(
        cx.gpu,
        KERNEL,
        &step.variant,
        super::precision(step)?,
        &[("x", "ST"), ("w", "ST"), ("bias", "ST")],
        17,
        SOURCE,
    )?;
    Ok(Box::new(ConvTranspose { pipeline: p, geo, output_padding, wg, dummy: upload(cx.gpu, &[0.0], &[1]) }))
}

impl GpuKernel for ConvTranspose {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("X is missing")?;
        let w = inputs.get(1).copied().flatten().ok_or("W is missing")?;
        let bias = inputs.get(2).copied().flatten();
        let (out, params) = problem(&self.geo, self.output_padding, &x.shape, &w.shape, bias.is_some())?;
        if bias.is_some_and(|b| b.len() != out[1]) {
            return Err(format!("B must hold one value per output channel ({})", out[1]));
        }
        let y = cx.output(&out)?;
        let total = out.iter().product();
        if total > 0 {
            let b = bias.unwrap_or(&self.dummy);
            dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &w.buf, &b.buf, &y.buf], groups_1d(total, self.wg))?;
        }
        Ok(y)
    }
}
