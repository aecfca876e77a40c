//! `wgpu.conv2d`: 2-D convolutions with constant weights (`Conv` / `kiln::FusedConv`, NCHW
//! or NHWC, grouped and depthwise: the steps the CPU target puts on `cpu.conv2d`), direct,
//! with the fused bias + activation epilogue. Variants: workgroup size.

use super::act::{PRELUDE, epilogue, step_int, step_ints, step_str};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, PARAMS_WGSL, dispatch, groups_1d, pipeline, upload};
use kiln_target::Step;

pub const KERNEL: &str = "wgpu.conv2d";
pub const VARIANTS: &[&str] = &["wg64", "wg128", "wg256", "wg32"];
const SOURCE: &str = include_str!("conv.wgsl");

/// A convolution's attributes (shared with `wgpu.conv_transpose`).
pub struct Geo {
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub pads: [usize; 4],
    pub groups: usize,
    pub nhwc: bool,
}

fn pair(v: Option<Vec<i64>>) -> Option<[usize; 2]> {
    match v.as_deref() {
        None => Some([1, 1]),
        Some(&[a, b]) if a >= 1 && b >= 1 => Some([a as usize, b as usize]),
        _ => None,
    }
}

pub fn geo(step: &Step) -> Option<Geo> {
    if !matches!(step_str(step, "auto_pad"), None | Some("NOTSET") | Some("VALID")) {
        return None;
    }
    let pads = match step_ints(step, "pads") {
        None => [0; 4],
        Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize],
        Some(_) => return None,
    };
    let nhwc = match step_str(step, "layout") {
        None | Some("NCHW") => false,
        Some("NHWC") => true,
        Some(_) => return None,
    };
    let groups = usize::try_from(step_int(step, "group").unwrap_or(1)).ok().filter(|&g| g >= 1)?;
    Some(Geo { strides: pair(step_ints(step, "strides"))?, dilations: pair(step_ints(step, "dilations"))?, pads, groups, nhwc })
}

pub fn covers(step: &Step) -> bool {
    geo(step).is_some() && epilogue(step, "v").is_some()
}

pub struct Conv {
    pipeline: wgpu::ComputePipeline,
    geo: Geo,
    wg: u32,
    dummy: GpuTensor,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let g = geo(step).ok_or("unsupported convolution attributes")?;
    let epi = epilogue(step, "v").ok_or("unsupported activation")?;
    let wg = super::elementwise::workgroup(&step.variant);
    let src = format!("{PARAMS_WGSL}{PRELUDE}{}", SOURCE.replace("{WG}", &wg.to_string()).replace("{EPILOGUE}", &epi));
    let p = pipeline(cx.gpu, KERNEL, &step.variant, &src).map_err(|e| e.to_string())?;
    Ok(Box::new(Conv { pipeline: p, geo: g, wg, dummy: upload(cx.gpu, &[0.0], &[1]) }))
}

/// Output spatial size along one axis.
fn out_len(input: usize, k: usize, stride: usize, dil: usize, pad: usize) -> Result<usize, String> {
    let span = dil * (k.max(1) - 1) + 1;
    (input + pad)
        .checked_sub(span)
        .map(|r| r / stride + 1)
        .ok_or_else(|| format!("kernel span {span} exceeds the padded input {}", input + pad))
}

impl GpuKernel for Conv {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("X is missing")?;
        let w = inputs.get(1).copied().flatten().ok_or("W is missing")?;
        let bias = inputs.get(2).copied().flatten();
        let g = &self.geo;
        let (n, c, h, wd) = match (g.nhwc, x.shape.as_slice()) {
            (true, &[n, h, wd, c]) => (n, c, h, wd),
            (false, &[n, c, h, wd]) => (n, c, h, wd),
            (_, s) => return Err(format!("X must be 4-D, found {s:?}")),
        };
        let &[o, cg, kh, kw] = w.shape.as_slice() else { return Err(format!("W must be 4-D, found {:?}", w.shape)) };
        if cg * g.groups != c || o % g.groups != 0 {
            return Err(format!("W {:?} does not fit {c} input channels in {} groups", w.shape, g.groups));
        }
        let oh = out_len(h, kh, g.strides[0], g.dilations[0], g.pads[0] + g.pads[2])?;
        let ow = out_len(wd, kw, g.strides[1], g.dilations[1], g.pads[1] + g.pads[3])?;
        let out = if g.nhwc { vec![n, oh, ow, o] } else { vec![n, o, oh, ow] };
        let total: usize = out.iter().product();
        let y = cx.pool.take(cx.gpu, &out).map_err(|e| e.to_string())?;
        let params: Vec<u32> = [
            n,
            c,
            h,
            wd,
            o,
            oh,
            ow,
            kh,
            kw,
            g.strides[0],
            g.strides[1],
            g.dilations[0],
            g.dilations[1],
            g.pads[0],
            g.pads[1],
            g.groups,
            g.nhwc as usize,
            bias.is_some() as usize,
            total,
        ]
        .iter()
        .map(|&v| v as u32)
        .collect();
        let bias_buf = bias.unwrap_or(&self.dummy);
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &w.buf, &bias_buf.buf, &y.buf], groups_1d(total, self.wg))?;
        Ok(y)
    }
}
