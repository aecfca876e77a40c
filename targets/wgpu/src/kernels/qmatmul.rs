//! `wgpu.qmatmul`: `kiln::QMatMul` (A `[.., K]` float, constant int8 / uint8 `[K, N]` weights
//! with per-tensor or per-column scales and zero points, bias, activation: the steps the CPU
//! target puts on `cpu.qmatmul`) on WGSL's packed 4x8 dot product. Up to three dispatches:
//! dynamic quantization's range (`qmatmul_minmax.wgsl`; a static scale is uploaded at load),
//! A to packed int8 words (`qmatmul_quantize.wgsl`), the GEMM with the zero-point corrections
//! and the f32 epilogue (`qmatmul.wgsl`). Weights are shifted to int8 and packed four K
//! values a word, B^T, at load. Quantization rounds and clamps as the CPU kernel does.

use super::act::{PRELUDE, epilogue};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{Float, GpuTensor, PARAMS_WGSL, dispatch, groups_1d, pipeline, upload};
use kiln_target::{Launch, Step};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "wgpu.qmatmul";
pub const VARIANTS: &[&str] = &["d64c4"];
const GEMM: &str = include_str!("qmatmul.wgsl");
const QUANTIZE: &str = include_str!("qmatmul_quantize.wgsl");
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
/// or why this kernel cannot take them.
fn operands(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<(XParams, Packed), String> {
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
    let &[k, n] = w.shape() else { return Err(format!("W must be [K, N], got {:?}", w.shape())) };
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
            let v = ws[r * n + c];
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
    epilogue(step, "x").is_some() && operands(step, weight).is_ok()
}

pub struct QMatMul {
    gemm: wgpu::ComputePipeline,
    quantize: wgpu::ComputePipeline,
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
        pipeline(cx.gpu, KERNEL, label, &format!("{}{PARAMS_WGSL}{PRELUDE}{body}", float.header())).map_err(|e| e.to_string())
    };
    Ok(Box::new(QMatMul {
        gemm: build("gemm", &GEMM.replace("{EPILOGUE}", &epi))?,
        quantize: build("quantize", QUANTIZE)?,
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

/// The GEMM dispatch's geometry (the largest of the step's dispatches).
pub fn launch(step: &Step, shapes: &[Option<Vec<usize>>], weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Launch> {
    let (_, p) = operands(step, weight).ok()?;
    let m = rows(shapes.first()?.as_ref()?, p.k).ok()?;
    Some(Launch { grid: groups_1d(m * p.n.div_ceil(4), 64), block: [64, 1, 1], shared_bytes: 0 })
}

impl GpuKernel for QMatMul {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let a = inputs.first().copied().flatten().ok_or("X is missing")?;
        let (k, n) = (self.k, self.n);
        let m = rows(&a.shape, k)?;
        let k4 = k.div_ceil(4);
        let mut out = a.shape.clone();
        if let Some(l) = out.last_mut() {
            *l = n;
        }
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
            &[(m * k4) as u32, k4 as u32, k as u32],
            &[&a.buf, &qp.buf, &aq.buf],
            groups_1d(m * k4, 64),
        )?;
        let y = cx.output(&out)?;
        let params = [m as u32, n as u32, k4 as u32, k as u32, self.has_bias as u32];
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
