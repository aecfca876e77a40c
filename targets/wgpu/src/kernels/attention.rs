//! `wgpu.attention`: the fused `kiln::Attention` op (the steps the CPU target puts on
//! `cpu.attention`): Q, K, V of rank 3 or 4, K optionally pre-transposed, K/V heads equal to
//! Q's or one, an additive mask broadcast to the scores; or with `num_heads` the heads side by
//! side in `[b, s, h*d]` operands, or Q, K, V packed in one `[b, s, 3*h*d]` tensor (the CPU
//! target's `Layout`s). Every operand is read through (offset, batch, head, row) strides.
//! Variants: workgroup size.

use super::act::{step_float, step_int};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, PARAMS_WGSL, dispatch, pipeline, upload};
use kiln_target::{Launch, Step};
use kiln_target_cpu::kernels::{AttentionSpec, Layout, Strides, mask_strides};

pub const KERNEL: &str = "wgpu.attention";
pub const VARIANTS: &[&str] = &["wg64", "wg32", "wg128"];
const SOURCE: &str = include_str!("attention.wgsl");

/// K pre-transposed (heads first only), or `num_heads` heads side by side.
pub fn covers(step: &Step) -> bool {
    match step_int(step, "num_heads") {
        None => matches!(step_int(step, "k_transposed").unwrap_or(0), 0 | 1),
        Some(h) => h > 0 && step_int(step, "k_transposed").unwrap_or(0) == 0,
    }
}

/// Sizes and operand strides of one call.
struct Geometry {
    /// B, H, HK, N, M, D, DV.
    dims: [usize; 7],
    q: Strides,
    k: Strides,
    /// K's stride along a key and along the head dimension.
    k_jd: [usize; 2],
    v: Strides,
    /// Output batch, head and row strides, and its shape.
    y: [usize; 3],
    out: Vec<usize>,
}

/// Heads first: Q `[b, h, n, d]` (or rank 3, one head), K `[b, hk, m, d]` or transposed
/// `[b, hk, d, m]`, V `[b, hk, m, dv]`; output `[.., n, dv]`.
fn heads_first(qs: &[usize], ks: &[usize], vs: &[usize], kt: bool) -> Result<Geometry, String> {
    let r = qs.len();
    if !(r == 3 || r == 4) || ks.len() != r || vs.len() != r {
        return Err(format!("Q, K, V must all have rank 3 or 4, got {qs:?}, {ks:?}, {vs:?}"));
    }
    let (b, h, hk) = if r == 4 { (qs[0], qs[1], ks[1]) } else { (qs[0], 1, 1) };
    let (m, dk) = if kt { (ks[r - 1], ks[r - 2]) } else { (ks[r - 2], ks[r - 1]) };
    let (n, d, dv) = (qs[r - 2], qs[r - 1], vs[r - 1]);
    let heads_ok = (hk == h || hk == 1) && (r == 3 || vs[1] == hk);
    if ks[0] != b || vs[0] != b || !heads_ok || dk != d || vs[r - 2] != m {
        return Err(format!("attention operands do not line up: Q {qs:?}, K {ks:?} (transposed: {kt}), V {vs:?}"));
    }
    let mut out = qs.to_vec();
    out[r - 1] = dv;
    Ok(Geometry {
        dims: [b, h, hk, n, m, d, dv],
        q: Strides::heads_first(h, n, d),
        k: Strides::heads_first(hk, m, d),
        k_jd: if kt { [1, m] } else { [d, 1] },
        v: Strides::heads_first(hk, m, dv),
        y: [h * n * dv, n * dv, dv],
        out,
    })
}

/// `num_heads` heads side by side: Q `[b, n, h*d]`, K `[b, m, h*d]`, V `[b, m, h*dv]`, or Q
/// alone `[b, n, 3*h*d]` holding Q, K, V (packed); output `[b, n, h*dv]`.
fn in_columns(heads: usize, qs: &[usize], kv: Option<(&[usize], &[usize])>) -> Result<Geometry, String> {
    let &[b, n, w] = qs else { return Err(format!("Q must have rank 3 with num_heads, got {qs:?}")) };
    let (spec, layout) = match kv {
        None => {
            if !w.is_multiple_of(3 * heads) {
                return Err(format!("packed Q, K, V {qs:?} does not split into 3 x {heads} heads"));
            }
            let s = AttentionSpec::new(b, heads, n, n, w / (3 * heads));
            (s, Layout::packed(&s))
        }
        Some((ks, vs)) => {
            let ok = ks.len() == 3 && vs.len() == 3 && ks[0] == b && vs[0] == b && ks[1] == vs[1];
            if !ok || !w.is_multiple_of(heads) || ks[2] != w || !vs[2].is_multiple_of(heads) {
                return Err(format!("attention operands do not split into {heads} heads: Q {qs:?}, K {ks:?}, V {vs:?}"));
            }
            let s = AttentionSpec::new(b, heads, n, ks[1], w / heads).head_dim_v(vs[2] / heads);
            (s, Layout::in_columns(&s))
        }
    };
    let (m, d, dv) = (spec.seq_k, spec.head_dim, spec.head_dim_v);
    Ok(Geometry {
        dims: [b, heads, heads, n, m, d, dv],
        k_jd: [layout.k.row, 1],
        q: layout.q,
        k: layout.k,
        v: layout.v,
        y: [n * heads * dv, dv, heads * dv],
        out: vec![b, n, heads * dv],
    })
}

pub struct Attention {
    pipeline: wgpu::ComputePipeline,
    num_heads: Option<usize>,
    k_transposed: bool,
    scale: f32,
    wg: u32,
    dummy: GpuTensor,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let wg = super::elementwise::workgroup(&step.variant);
    let p = pipeline(
        cx.gpu,
        KERNEL,
        &step.variant,
        &format!("{}{PARAMS_WGSL}{}", super::precision(step)?.header(), SOURCE.replace("{WG}", &wg.to_string())),
    )
    .map_err(|e| e.to_string())?;
    Ok(Box::new(Attention {
        pipeline: p,
        num_heads: step_int(step, "num_heads").and_then(|h| usize::try_from(h).ok()),
        k_transposed: step_int(step, "k_transposed").unwrap_or(0) == 1,
        scale: step_float(step, "scale").unwrap_or(1.0),
        wg,
        dummy: upload(cx.gpu, &[0.0], &[1]),
    }))
}

/// The launch geometry of a variant at the step's input shapes: a workgroup per query row
/// and head.
pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let q = shapes.first()?.as_ref()?;
    let heads = step_int(step, "num_heads").and_then(|h| usize::try_from(h).ok()).unwrap_or(1);
    let rows: usize = q[..q.len().checked_sub(1)?].iter().product::<usize>() * heads;
    let (threads, shared_bytes) = super::footprint(KERNEL, variant);
    Some(Launch { grid: super::rows::row_groups(rows), block: [threads, 1, 1], shared_bytes })
}

impl GpuKernel for Attention {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let q = inputs.first().copied().flatten().ok_or("Q is missing")?;
        let (k, v) = (inputs.get(1).copied().flatten(), inputs.get(2).copied().flatten());
        let g = match (self.num_heads, k, v) {
            (Some(h), None, None) => in_columns(h, &q.shape, None)?,
            (Some(h), Some(k), Some(v)) => in_columns(h, &q.shape, Some((&k.shape, &v.shape)))?,
            (None, Some(k), Some(v)) => heads_first(&q.shape, &k.shape, &v.shape, self.k_transposed)?,
            _ => return Err("attention needs K and V, or num_heads with Q, K, V packed".into()),
        };
        let [b, h, _, n, m, _, dv] = g.dims;
        if dv > 4 * self.wg as usize {
            return Err(format!("value head size {dv} exceeds 4 x the workgroup ({})", self.wg));
        }
        let mask = inputs.get(3).copied().flatten();
        let ms = match mask {
            Some(t) => mask_strides(&t.shape, [b, h, n, m])?,
            None => [0; 4],
        };
        let y = cx.output(&g.out)?;
        let rows = b * h * n;
        if rows == 0 || dv == 0 {
            return Ok(y);
        }
        let groups = super::rows::row_groups(rows);
        let strides = |s: &Strides| [s.offset, s.batch, s.head, s.row];
        let params: Vec<u32> = g
            .dims
            .iter()
            .chain(&[0])
            .map(|&x| x as u32)
            .chain([self.scale.to_bits(), mask.is_some() as u32])
            .chain(ms.iter().map(|&s| s as u32))
            .chain([groups[0]])
            .chain(
                strides(&g.q)
                    .into_iter()
                    .chain([g.k.offset, g.k.batch, g.k.head])
                    .chain(g.k_jd)
                    .chain(strides(&g.v))
                    .chain(g.y)
                    .map(|x| x as u32),
            )
            .collect();
        let mbuf = mask.unwrap_or(&self.dummy);
        let (kb, vb) = (k.unwrap_or(q), v.unwrap_or(q));
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&q.buf, &kb.buf, &vb.buf, &mbuf.buf, &y.buf], groups)?;
        Ok(y)
    }
}
