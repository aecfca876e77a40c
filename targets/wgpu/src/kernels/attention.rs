//! `wgpu.attention`: the fused `kiln::Attention` op (the steps the CPU target puts on
//! `cpu.attention`: Q, K, V of rank 3 or 4, K optionally pre-transposed, K/V heads equal to
//! Q's or one, an additive mask broadcast to the scores). Variants: workgroup size.

use super::act::{step_float, step_int};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, PARAMS_WGSL, dispatch, pipeline, upload};
use kiln_target::{Launch, Step};
use kiln_target_cpu::kernels::mask_strides;

pub const KERNEL: &str = "wgpu.attention";
pub const VARIANTS: &[&str] = &["wg64", "wg32", "wg128"];
const SOURCE: &str = include_str!("attention.wgsl");

/// Heads-in-columns steps (`num_heads`: `[b, s, h*d]` or packed Q, K, V operands) stay on
/// the CPU.
pub fn covers(step: &Step) -> bool {
    matches!(step_int(step, "k_transposed").unwrap_or(0), 0 | 1) && step_int(step, "num_heads").is_none()
}

pub struct Attention {
    pipeline: wgpu::ComputePipeline,
    k_transposed: bool,
    scale: f32,
    wg: u32,
    dummy: GpuTensor,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let wg = super::elementwise::workgroup(&step.variant);
    let p = pipeline(cx.gpu, KERNEL, &step.variant, &format!("{PARAMS_WGSL}{}", SOURCE.replace("{WG}", &wg.to_string())))
        .map_err(|e| e.to_string())?;
    Ok(Box::new(Attention {
        pipeline: p,
        k_transposed: step_int(step, "k_transposed").unwrap_or(0) == 1,
        scale: step_float(step, "scale").unwrap_or(1.0),
        wg,
        dummy: upload(cx.gpu, &[0.0], &[1]),
    }))
}

/// The launch geometry of a variant at the step's input shapes: a workgroup per query row.
pub fn launch(variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let q = shapes.first()?.as_ref()?;
    let rows: usize = q[..q.len().checked_sub(1)?].iter().product();
    let (threads, shared_bytes) = super::footprint(KERNEL, variant);
    Some(Launch { grid: super::rows::row_groups(rows), block: [threads, 1, 1], shared_bytes })
}

impl GpuKernel for Attention {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let get = |i: usize, what: &str| inputs.get(i).copied().flatten().ok_or_else(|| format!("{what} is missing"));
        let (q, k, v) = (get(0, "Q")?, get(1, "K")?, get(2, "V")?);
        let (qs, ks, vs) = (&q.shape, &k.shape, &v.shape);
        let r = qs.len();
        if !(r == 3 || r == 4) || ks.len() != r || vs.len() != r {
            return Err(format!("Q, K, V must all have rank 3 or 4, got {qs:?}, {ks:?}, {vs:?}"));
        }
        let (b, h, hk) = if r == 4 { (qs[0], qs[1], ks[1]) } else { (qs[0], 1, 1) };
        let (m, dk) = if self.k_transposed { (ks[r - 1], ks[r - 2]) } else { (ks[r - 2], ks[r - 1]) };
        let (n, d, dv) = (qs[r - 2], qs[r - 1], vs[r - 1]);
        let heads_ok = (hk == h || hk == 1) && (r == 3 || vs[1] == hk);
        if ks[0] != b || vs[0] != b || !heads_ok || dk != d || vs[r - 2] != m {
            return Err(format!("attention operands do not line up: Q {qs:?}, K {ks:?} (transposed: {}), V {vs:?}", self.k_transposed));
        }
        if dv > 4 * self.wg as usize {
            return Err(format!("value head size {dv} exceeds 4 x the workgroup ({})", self.wg));
        }
        let mask = inputs.get(3).copied().flatten();
        let ms = match mask {
            Some(t) => mask_strides(&t.shape, [b, h, n, m])?,
            None => [0; 4],
        };
        let mut out = qs.clone();
        out[r - 1] = dv;
        let y = cx.pool.take(cx.gpu, &out).map_err(|e| e.to_string())?;
        let rows = b * h * n;
        if rows == 0 || dv == 0 {
            return Ok(y);
        }
        let groups = super::rows::row_groups(rows);
        let params: Vec<u32> = [b, h, hk, n, m, d, dv, self.k_transposed as usize]
            .iter()
            .map(|&x| x as u32)
            .chain([self.scale.to_bits(), mask.is_some() as u32])
            .chain(ms.iter().map(|&s| s as u32))
            .chain([groups[0]])
            .collect();
        let mbuf = mask.unwrap_or(&self.dummy);
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&q.buf, &k.buf, &v.buf, &mbuf.buf, &y.buf], groups)?;
        Ok(y)
    }
}
