//! `wgpu.qmatmul`: `kiln::QMatMul` (A `[.., K]` float, constant int8 / uint8 `[K, N]` weights
//! with per-tensor or per-column scales and zero points, bias, activation: the steps the CPU
//! target puts on `cpu.qmatmul`) on WGSL's packed 4x8 dot product; and `wgpu.qconv`,
//! `kiln::QConv` with one group (`cpu.qconv`; NCHW or NHWC, strides, dilations, pads) as the
//! same GEMM over im2col rows. Up to three dispatches: dynamic quantization's range
//! (`qmatmul_minmax.wgsl`; a static scale is uploaded at load), A to packed int8 words
//! (`qmatmul_quantize.wgsl`, or `qconv_im2col.wgsl` gathering the taps), the GEMM with the
//! zero-point corrections and the f32 epilogue (`qmatmul.wgsl`). Weights are shifted to int8
//! and packed four K values a word, B^T, at load. Quantization rounds and clamps as the CPU
//! kernels do (`qint8.wgsl`).

use super::act::{PRELUDE, epilogue};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{Float, GpuTensor, PARAMS_WGSL, dispatch, groups_1d, pipeline, upload};
use kiln_target::{Launch, Step};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "wgpu.qmatmul";
pub const CONV: &str = "wgpu.qconv";
pub const VARIANTS: &[&str] = &["d64c4"];
const GEMM: &str = include_str!("qmatmul.wgsl");
const QUANTIZE: &str = include_str!("qmatmul_quantize.wgsl");
const IM2COL: &str = include_str!("qconv_im2col.wgsl");
const Q8: &str = include_str!("qint8.wgsl");
const MINMAX: &str = include_str!("qmatmul_minmax.wgsl");

/// The activation's quantization as the shaders read it: `[scale bits, zero point in its
/// own type, signed, zero point as int8]`, or None for dynamic.
type XParams = Option<[u32; 4]>;

/// The weights shifted to int8 and packed `[N, K/4]` (B^T), and per column `[sum of w, zw,
/// scale bits, bias bits]`.
struct Packed {
    k: usize,
    n: usize,
    words: Vec<u32>,
    chan: Vec<u32>,
    has_bias: bool,
}

fn scalar_f32(t: &Tensor) -> Option<f32> {
    (t.dtype() == DType::F32 && t.len() == 1).then(|| t.as_slice::<f32>().ok()?.first().copied()).flatten()
}

/// int8 values of an int8 / uint8 tensor, uint8 shifted by -128.
fn shifted(t: &Tensor) -> Option<Vec<i32>> {
    match t.dtype() {
        DType::I8 => Some(t.as_slice::<i8>().ok()?.iter().map(|&v| i32::from(v)).collect()),
        DType::U8 => Some(t.as_slice::<u8>().ok()?.iter().map(|&v| i32::from(v) - 128).collect()),
        _ => None,
    }
}

/// The step's operands (inputs: X, x_scale, x_zero_point, W, w_scale, w_zero_point, bias),
/// or why this kernel cannot take them. W is `[K, N]` for a QMatMul, `[O, C, KH, KW]` (N = O,
/// K = C x KH x KW) for a QConv.
fn operands(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<(XParams, Packed), String> {
    let conv = step.op == "QConv";
    let input = |i: usize| step.inputs.get(i).copied().flatten();
    let get = |i: usize| input(i).and_then(weight);
    let x = match (input(1), input(2)) {
        (None, None) => None,
        (None, Some(_)) => return Err("x_zero_point without x_scale".into()),
        (Some(_), z) => {
            let scale = get(1).as_ref().and_then(scalar_f32).ok_or("x_scale must be a constant f32 scalar")?;
            let (zp, signed) = match z.map(|_| get(2)) {
                None => (0, false),
                Some(Some(t)) if t.len() == 1 && t.dtype() == DType::U8 => {
                    (i32::from(t.as_slice::<u8>().map_err(|e| e.to_string())?[0]), false)
                }
                Some(Some(t)) if t.len() == 1 && t.dtype() == DType::I8 => {
                    (i32::from(t.as_slice::<i8>().map_err(|e| e.to_string())?[0]), true)
                }
                Some(_) => return Err("x_zero_point must be a constant u8 or i8 scalar".into()),
            };
            let as_int8 = if signed { zp } else { zp - 128 };
            Some([scale.to_bits(), zp as u32, signed as u32, as_int8 as u32])
        }
    };
    let w = get(3).ok_or("W is not a constant")?;
    let (k, n) = match (conv, w.shape()) {
        (false, &[k, n]) => (k, n),
        (true, &[o, c, kh, kw]) => (c * kh * kw, o),
        (_, s) => return Err(format!("W has shape {s:?}, not [K, N] (QMatMul) or [O, C, KH, KW] (QConv)")),
    };
    let ws = shifted(&w).ok_or_else(|| format!("W must be int8 or uint8, got {}", w.dtype()))?;
    let scale =
        get(4).filter(|t| t.dtype() == DType::F32 && (t.len() == 1 || t.len() == n)).ok_or("w_scale must be f32 of 1 or N values")?;
    let scale = scale.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec();
    let zero = match input(5) {
        None => vec![if w.dtype() == DType::U8 { -128 } else { 0 }],
        Some(_) => get(5)
            .filter(|z| z.dtype() == w.dtype() && z.len() == scale.len())
            .and_then(|z| shifted(&z))
            .ok_or("w_zero_point must be a constant of W's type and w_scale's size")?,
    };
    let bias = match input(6) {
        None => None,
        Some(_) => Some(get(6).filter(|b| b.dtype() == DType::F32 && b.len() == n).ok_or("bias must be a constant f32 of N values")?),
    };
    let bias = bias.map(|b| b.as_slice::<f32>().map(<[f32]>::to_vec)).transpose().map_err(|e| e.to_string())?;
    let k4 = k.div_ceil(4);
    let mut words = vec![0u32; n * k4];
    let mut chan = Vec::with_capacity(4 * n);
    for c in 0..n {
        let mut sum = 0i32;
        for r in 0..k {
            let v = if conv { ws[c * k + r] } else { ws[r * n + c] };
            sum += v;
            words[c * k4 + r / 4] |= ((v as u32) & 0xff) << (8 * (r % 4));
        }
        let at = |v: &[i32]| v.get(c).or(v.first()).copied().unwrap_or(0);
        let s = scale.get(c).or(scale.first()).copied().unwrap_or(0.0);
        chan.extend([sum as u32, at(&zero) as u32, s.to_bits(), bias.as_ref().map_or(0, |b| b[c].to_bits())]);
    }
    Ok((x, Packed { k, n, words, chan, has_bias: bias.is_some() }))
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> bool {
    epilogue(step, "x").is_some() && operands(step, weight).is_ok() && (step.op != "QConv" || conv_geometry(step, weight).is_some())
}

/// A QConv's geometry and kernel size, when this kernel runs it (one group).
fn conv_geometry(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<(super::conv::Geo, [usize; 2])> {
    let g = super::conv::geo(step).filter(|g| g.groups == 1)?;
    let w = step.inputs.get(3).copied().flatten().and_then(weight)?;
    match w.shape() {
        &[_, _, kh, kw] => Some((g, [kh, kw])),
        _ => None,
    }
}

pub struct QMatMul {
    gemm: wgpu::ComputePipeline,
    /// A to packed rows: straight (QMatMul) or through im2col (QConv).
    quantize: wgpu::ComputePipeline,
    conv: Option<(super::conv::Geo, [usize; 2])>,
    /// Dynamic quantization's range pass (None: static, `qp` holds the constants).
    minmax: Option<wgpu::ComputePipeline>,
    qp: GpuTensor,
    words: GpuTensor,
    chan: GpuTensor,
    k: usize,
    n: usize,
    has_bias: bool,
}

fn words(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&w| f32::from_bits(w)).collect()
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let epi = epilogue(step, "x").ok_or("unsupported activation")?;
    let (x, p) = operands(step, cx.weight)?;
    let float = super::precision(step)?;
    let build = |label: &str, body: &str| -> Result<wgpu::ComputePipeline, String> {
        pipeline(cx.gpu, &step.kernel, label, &format!("{}{PARAMS_WGSL}{PRELUDE}{body}", float.header())).map_err(|e| e.to_string())
    };
    let conv = if step.op == "QConv" { Some(conv_geometry(step, cx.weight).ok_or("unsupported QConv attributes")?) } else { None };
    let quantize = if conv.is_some() { format!("{IM2COL}{Q8}") } else { format!("{QUANTIZE}{Q8}") };
    Ok(Box::new(QMatMul {
        gemm: build("gemm", &GEMM.replace("{EPILOGUE}", &epi))?,
        quantize: build("quantize", &quantize)?,
        conv,
        minmax: if x.is_none() { Some(build("minmax", MINMAX)?) } else { None },
        qp: upload(cx.gpu, &words(&x.unwrap_or_default()), &[4]),
        words: upload(cx.gpu, &words(&p.words), &[p.words.len()]),
        chan: upload(cx.gpu, &words(&p.chan), &[p.chan.len()]),
        k: p.k,
        n: p.n,
        has_bias: p.has_bias,
    }))
}

/// Rows of A for its shape (the GEMM's M).
fn rows(a: &[usize], k: usize) -> Result<usize, String> {
    if a.len() < 2 || a.last() != Some(&k) {
        return Err(format!("X has shape {a:?}; its last dimension must be {k}"));
    }
    Ok(a[..a.len() - 1].iter().product())
}

/// A QConv's GEMM rows (n, oh, ow), output shape and im2col parameters for input `x`.
fn conv_problem(
    geo: &super::conv::Geo,
    [kh, kw]: [usize; 2],
    x: &[usize],
    o: usize,
    k: usize,
) -> Result<(usize, Vec<usize>, Vec<u32>), String> {
    let (n, c, h, wd) = match (geo.nhwc, x) {
        (true, &[n, h, wd, c]) => (n, c, h, wd),
        (false, &[n, c, h, wd]) => (n, c, h, wd),
        (_, s) => return Err(format!("X must be 4-D, found {s:?}")),
    };
    if c * kh * kw != k {
        return Err(format!("W ({k} values per output channel) does not fit {c} input channels of a {kh}x{kw} kernel"));
    }
    let oh = super::conv::out_len(h, kh, geo.strides[0], geo.dilations[0], geo.pads[0] + geo.pads[2])?;
    let ow = super::conv::out_len(wd, kw, geo.strides[1], geo.dilations[1], geo.pads[1] + geo.pads[3])?;
    let out = if geo.nhwc { vec![n, oh, ow, o] } else { vec![n, o, oh, ow] };
    let p = [c, h, wd, oh, ow, kh, kw, geo.strides[0], geo.strides[1], geo.dilations[0], geo.dilations[1], geo.pads[0], geo.pads[1]];
    let mut params: Vec<u32> = p.iter().map(|&v| v as u32).collect();
    params.push(geo.nhwc as u32);
    Ok((n * oh * ow, out, params))
}

/// The GEMM dispatch's geometry (the largest of the step's dispatches).
pub fn launch(step: &Step, shapes: &[Option<Vec<usize>>], weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Launch> {
    let (_, p) = operands(step, weight).ok()?;
    let x = shapes.first()?.as_ref()?;
    let m = match conv_geometry(step, weight).filter(|_| step.op == "QConv") {
        Some((geo, ks)) => conv_problem(&geo, ks, x, p.n, p.k).ok()?.0,
        None => rows(x, p.k).ok()?,
    };
    Some(Launch { grid: groups_1d(m * p.n.div_ceil(4), 64), block: [64, 1, 1], shared_bytes: 0 })
}

impl GpuKernel for QMatMul {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let a = inputs.first().copied().flatten().ok_or("X is missing")?;
        let (k, n) = (self.k, self.n);
        let k4 = k.div_ceil(4);
        // GEMM rows, output shape, the quantize pass's parameters past [M * K4, K4, K], and
        // the pixels per image when the GEMM writes NCHW.
        let (m, out, extra, ohw) = match &self.conv {
            Some((geo, ks)) => {
                let (m, out, extra) = conv_problem(geo, *ks, &a.shape, n, k)?;
                let ohw = if geo.nhwc { 0 } else { out[2] * out[3] };
                (m, out, extra, ohw)
            }
            None => {
                let mut out = a.shape.clone();
                if let Some(l) = out.last_mut() {
                    *l = n;
                }
                (rows(&a.shape, k)?, out, Vec::new(), 0)
            }
        };
        // A dynamic scale is computed per call into a buffer of its own.
        let qp = match &self.minmax {
            Some(p) => {
                let qp = cx.pool.take(cx.gpu, &[4], Float::F32).map_err(|e| e.to_string())?;
                dispatch(cx.gpu, cx.enc, p, &[a.len() as u32], &[&a.buf, &qp.buf], [1, 1, 1])?;
                qp
            }
            None => self.qp.clone(),
        };
        let aq = cx.pool.take(cx.gpu, &[m, k4], Float::F32).map_err(|e| e.to_string())?;
        dispatch(
            cx.gpu,
            cx.enc,
            &self.quantize,
            &[&[(m * k4) as u32, k4 as u32, k as u32], extra.as_slice()].concat(),
            &[&a.buf, &qp.buf, &aq.buf],
            groups_1d(m * k4, 64),
        )?;
        let y = cx.output(&out)?;
        let params = [m as u32, n as u32, k4 as u32, k as u32, self.has_bias as u32, ohw as u32];
        dispatch(
            cx.gpu,
            cx.enc,
            &self.gemm,
            &params,
            &[&aq.buf, &self.words.buf, &self.chan.buf, &qp.buf, &y.buf],
            groups_1d(m * n.div_ceil(4), 64),
        )?;
        cx.pool.give(aq);
        if self.minmax.is_some() {
            cx.pool.give(qp);
        }
        Ok(y)
    }
}
