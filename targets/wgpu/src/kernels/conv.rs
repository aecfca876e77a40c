//! `wgpu.conv2d`: 2-D convolutions with constant weights (`Conv` / `kiln::FusedConv`, NCHW
//! or NHWC, grouped and depthwise: the steps the CPU target puts on `cpu.conv2d`), direct,
//! with the fused bias + activation epilogue. Variants: workgroup size.

use super::act::{PRELUDE, epilogue, step_int, step_ints, step_str};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, PARAMS_WGSL, dispatch, groups_1d, pipeline, upload};
use kiln_target::{Launch, Step};

pub const KERNEL: &str = "wgpu.conv2d";
pub const VARIANTS: &[&str] = &["wg64", "wg128", "wg256", "wg32", "i8r2", "i16r1", "i8r4", "i16r2"];
const SOURCE: &str = include_str!("conv.wgsl");
const GEMM_SOURCE: &str = include_str!("conv_gemm.wgsl");

/// (T, R) of an implicit-GEMM variant `i{T}r{R}`: T x T threads, R x R outputs each.
fn implicit(variant: &str) -> Option<(u32, u32)> {
    let (t, r) = variant.strip_prefix('i')?.split_once('r')?;
    Some((t.parse().ok()?, r.parse().ok()?)).filter(|&(t, r)| t > 0 && r > 0)
}

/// Threads per workgroup and workgroup memory bytes of a variant.
pub fn footprint(variant: &str) -> (u32, u32) {
    match implicit(variant) {
        Some((t, r)) => (t * t, 2 * t * t * r * 4),
        None => (super::elementwise::workgroup(variant), 0),
    }
}

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
    /// (T, R) of an implicit-GEMM variant.
    gemm: Option<(u32, u32)>,
    dummy: GpuTensor,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let g = geo(step).ok_or("unsupported convolution attributes")?;
    let epi = epilogue(step, "v").ok_or("unsupported activation")?;
    let wg = super::elementwise::workgroup(&step.variant);
    let gemm = implicit(&step.variant);
    let body = match gemm {
        None => SOURCE.replace("{WG}", &wg.to_string()),
        Some((t, r)) => GEMM_SOURCE
            .replace("{T}", &t.to_string())
            .replace("{R}", &r.to_string())
            .replace("{TILE}", &(t * t * r).to_string())
            .replace("{RR}", &(r * r).to_string()),
    };
    let src = format!("{}{PARAMS_WGSL}{PRELUDE}{}", super::precision(step)?.header(), body.replace("{EPILOGUE}", &epi));
    let p = pipeline(cx.gpu, KERNEL, &step.variant, &src).map_err(|e| e.to_string())?;
    Ok(Box::new(Conv { pipeline: p, geo: g, wg, gemm, dummy: upload(cx.gpu, &[0.0], &[1]) }))
}

/// Output spatial size along one axis.
pub fn out_len(input: usize, k: usize, stride: usize, dil: usize, pad: usize) -> Result<usize, String> {
    let span = dil * (k.max(1) - 1) + 1;
    (input + pad)
        .checked_sub(span)
        .map(|r| r / stride + 1)
        .ok_or_else(|| format!("kernel span {span} exceeds the padded input {}", input + pad))
}

/// Output shape, kernel parameters and workgroups of one dispatch.
type Planned = (Vec<usize>, Vec<u32>, [u32; 3]);

/// (output shape, parameters, workgroups) of a convolution at input `x` and weight `w`
/// shapes, for the direct kernel (`wg`) or the implicit GEMM (`gemm`: T, R).
fn problem(g: &Geo, x: &[usize], w: &[usize], has_bias: bool, wg: u32, gemm: Option<(u32, u32)>) -> Result<Planned, String> {
    let (n, c, h, wd) = match (g.nhwc, x) {
        (true, &[n, h, wd, c]) => (n, c, h, wd),
        (false, &[n, c, h, wd]) => (n, c, h, wd),
        (_, s) => return Err(format!("X must be 4-D, found {s:?}")),
    };
    let &[o, cg, kh, kw] = w else { return Err(format!("W must be 4-D, found {w:?}")) };
    if cg * g.groups != c || o % g.groups != 0 {
        return Err(format!("W {w:?} does not fit {c} input channels in {} groups", g.groups));
    }
    let oh = out_len(h, kh, g.strides[0], g.dilations[0], g.pads[0] + g.pads[2])?;
    let ow = out_len(wd, kw, g.strides[1], g.dilations[1], g.pads[1] + g.pads[3])?;
    let out = if g.nhwc { vec![n, oh, ow, o] } else { vec![n, o, oh, ow] };
    let total: usize = out.iter().product();
    let p = [
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
        has_bias as usize,
        total,
    ];
    let grid = match gemm {
        None => groups_1d(total, wg),
        Some((t, r)) => {
            let tile = (t * r) as usize;
            let rows = (o / g.groups).div_ceil(tile);
            if rows > 65535 || g.groups > 65535 {
                return Err(format!("{o} output channels in {} groups exceed the implicit GEMM's grid", g.groups));
            }
            [(n * oh * ow).div_ceil(tile).clamp(1, 65535) as u32, rows.max(1) as u32, g.groups as u32]
        }
    };
    Ok((out, p.iter().map(|&v| v as u32).collect(), grid))
}

/// The launch geometry of a variant at the step's input shapes.
pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let g = geo(step)?;
    let (x, w) = (shapes.first()?.as_ref()?, shapes.get(1)?.as_ref()?);
    let gemm = implicit(variant);
    let (_, _, grid) = problem(&g, x, w, false, super::elementwise::workgroup(variant), gemm).ok()?;
    let (threads, f32_bytes) = footprint(variant);
    // The tiles hold the step's storage type (footprint counts f32, the larger).
    let shared_bytes = f32_bytes / 4 * super::precision(step).ok()?.bytes() as u32;
    let block = match gemm {
        Some((t, _)) => [t, t, 1],
        None => [threads, 1, 1],
    };
    Some(Launch { grid, block, shared_bytes })
}

impl GpuKernel for Conv {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("X is missing")?;
        let w = inputs.get(1).copied().flatten().ok_or("W is missing")?;
        let bias = inputs.get(2).copied().flatten();
        let (out, params, grid) = problem(&self.geo, &x.shape, &w.shape, bias.is_some(), self.wg, self.gemm)?;
        let y = cx.output(&out)?;
        if out.iter().product::<usize>() == 0 {
            return Ok(y);
        }
        let bias_buf = bias.unwrap_or(&self.dummy);
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &w.buf, &bias_buf.buf, &y.buf], grid)?;
        Ok(y)
    }
}
