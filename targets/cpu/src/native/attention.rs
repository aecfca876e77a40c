//! `kiln::Attention` (f32): `softmax(scale Q K^T + mask) V` per (batch, head) on the fused
//! attention kernel, so the score matrix never leaves cache. With `num_heads` the kernel
//! reads the heads in place from `[b, s, h*d]` operands (or from one packed `[b, s, 3*h*d]`
//! Q, K, V) and writes `[b, n, h*dv]`.

use super::{Dims, Lowered, bound_shape, dtype_of, filler, pick, step_float, step_int, tune};
use crate::exec::Pool;
use crate::kernels::{AttentionParams, AttentionSpec, Layout, Mask, attention_candidates, attention_in, mask_strides};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.attention";

/// Sizes read from the operand shapes: Q `[b, h, n, d]` (or `[b, n, d]`), K `[b, hk, m, d]`
/// (`[.., d, m]` when given transposed), V `[b, hk, m, dv]`.
fn spec(q: &[usize], k: &[usize], v: &[usize], k_transposed: bool, scale: f32) -> Result<AttentionSpec, String> {
    let r = q.len();
    if !(r == 3 || r == 4) || k.len() != r || v.len() != r {
        return Err(format!("Q, K, V must all have rank 3 or 4, got {q:?}, {k:?}, {v:?}"));
    }
    let (batch, heads, kv_heads) = if r == 4 { (q[0], q[1], k[1]) } else { (q[0], 1, 1) };
    let (m, dk) = if k_transposed { (k[r - 1], k[r - 2]) } else { (k[r - 2], k[r - 1]) };
    let (n, d, dv) = (q[r - 2], q[r - 1], v[r - 1]);
    // kiln::Attention broadcasts like MatMul: K/V heads equal Q's or one shared head.
    let heads_ok = (kv_heads == heads || kv_heads == 1) && (r == 3 || v[1] == kv_heads);
    if k[0] != batch || v[0] != batch || !heads_ok || dk != d || v[r - 2] != m {
        return Err(format!("attention operands do not line up: Q {q:?}, K {k:?} (transposed: {k_transposed}), V {v:?}"));
    }
    Ok(AttentionSpec::new(batch, heads, n, m, d).kv_heads(kv_heads).head_dim_v(dv).scale(scale))
}

/// Sizes and layout with `num_heads = heads`: Q `[b, n, h*d]`, K `[b, m, h*d]`, V
/// `[b, m, h*dv]`, or (`kv` None) Q alone `[b, n, 3*h*d]` holding Q, K, V side by side.
fn heads_spec(heads: usize, q: &[usize], kv: Option<(&[usize], &[usize])>, scale: f32) -> Result<(AttentionSpec, Layout), String> {
    if q.len() != 3 || heads == 0 {
        return Err(format!("Q must have rank 3 and num_heads be positive, got {q:?} and {heads}"));
    }
    let Some((k, v)) = kv else {
        if !q[2].is_multiple_of(3 * heads) {
            return Err(format!("packed Q, K, V {q:?} does not split into 3 x {heads} heads"));
        }
        let s = AttentionSpec::new(q[0], heads, q[1], q[1], q[2] / (3 * heads)).scale(scale);
        return Ok((s, Layout::packed(&s)));
    };
    let ok = k.len() == 3 && v.len() == 3 && k[0] == q[0] && v[0] == q[0] && k[1] == v[1];
    if !ok || !q[2].is_multiple_of(heads) || k[2] != q[2] || !v[2].is_multiple_of(heads) {
        return Err(format!("attention operands do not split into {heads} heads: Q {q:?}, K {k:?}, V {v:?}"));
    }
    let s = AttentionSpec::new(q[0], heads, q[1], k[1], q[2] / heads).head_dim_v(v[2] / heads).scale(scale);
    Ok((s, Layout::in_columns(&s)))
}

/// Sizes and layout of the op on these operand shapes (K, V absent: packed).
fn spec_of(
    heads: Option<usize>,
    q: &[usize],
    kv: Option<(&[usize], &[usize])>,
    k_t: bool,
    scale: f32,
) -> Result<(AttentionSpec, Layout), String> {
    match (heads, kv) {
        (Some(h), kv) if !k_t => heads_spec(h, q, kv, scale),
        (None, Some((k, v))) => spec(q, k, v, k_t, scale).map(|s| (s, Layout::heads_first(&s))),
        _ => Err("attention needs K and V, or num_heads without k_transposed".into()),
    }
}

/// The output's shape: Q's with the last axis `heads*dv` (`[b, n, h*dv]`) or `dv`.
fn out_shape(q: &[usize], s: &AttentionSpec, layout: &Layout) -> Vec<usize> {
    let mut shape = q.to_vec();
    if let Some(last) = shape.last_mut() {
        *last = if layout.out_in_columns { s.heads * s.head_dim_v } else { s.head_dim_v };
    }
    shape
}

fn num_heads(attr: Option<i64>) -> Result<Option<usize>, String> {
    match attr {
        None => Ok(None),
        Some(h) if h > 0 => Ok(Some(h as usize)),
        Some(h) => Err(format!("num_heads must be positive, got {h}")),
    }
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    let present: Vec<usize> = (0..node.inputs.len().min(4)).filter(|&i| node.inputs[i].is_some()).collect();
    if node.inputs.len() > 4 || present.iter().any(|&i| dtype_of(g, node, i) != Some(DType::F32)) {
        return Ok(None);
    }
    let k_t = match node.attr_int("k_transposed").unwrap_or(0) {
        0 => false,
        1 => true,
        _ => return Ok(None),
    };
    let Ok(heads) = num_heads(node.attr_int("num_heads")) else { return Ok(None) };
    let scale = node.attr_float("scale").unwrap_or(1.0);
    let Some(q) = bound_shape(g, node, 0, dims) else { return Ok(None) };
    let (k, v) = (bound_shape(g, node, 1, dims), bound_shape(g, node, 2, dims));
    let kv = match (present.contains(&1), present.contains(&2), &k, &v) {
        (true, true, Some(k), Some(v)) => Some((&k[..], &v[..])),
        (false, false, _, _) => None,
        _ => return Ok(None),
    };
    let Ok((s, layout)) = spec_of(heads, &q, kv, k_t, scale) else { return Ok(None) };
    let cands = attention_candidates(&s, crate::device::cores());
    let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
    let qd = filler(q.iter().product());
    let (kd, vd) = match kv {
        Some((k, v)) => (filler(k.iter().product()), filler(v.iter().product())),
        None => (Vec::new(), Vec::new()),
    };
    let (kd, vd) = if kv.is_some() { (&kd[..], &vd[..]) } else { (&qd[..], &qd[..]) };
    let mut out = vec![0f32; s.batch * s.heads * s.seq_q * s.head_dim_v];
    let form = match (heads, kv) {
        (None, _) => "",
        (Some(_), Some(_)) => ",columns",
        (Some(_), None) => ",packed",
    };
    let problem =
        format!("b={},h={},hk={},n={},m={},d={},dv={}{form}", s.batch, s.heads, s.kv_heads, s.seq_q, s.seq_k, s.head_dim, s.head_dim_v);
    let variant = tune(tuner, KERNEL, problem, &names, |i| {
        attention_in(&layout, &s, &qd, kd, vd, Mask::None, &mut out, &cands[i]).map_err(|e| e.to_string())
    })?;
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

pub struct AttentionStep {
    k_transposed: bool,
    heads: Option<usize>,
    scale: f32,
}

impl AttentionStep {
    pub fn load(step: &Step) -> Result<AttentionStep, String> {
        let k_transposed = match step_int(step, "k_transposed").unwrap_or(0) {
            0 => false,
            1 => true,
            other => return Err(format!("k_transposed must be 0 or 1, got {other}")),
        };
        let heads = num_heads(step_int(step, "num_heads"))?;
        Ok(AttentionStep { k_transposed, heads, scale: step_float(step, "scale").unwrap_or(1.0) })
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, pool: &mut Pool) -> Result<Tensor, String> {
        let get = |i: usize| inputs.get(i).copied().flatten();
        let q = get(0).ok_or("Q is missing")?;
        let kv = match (get(1), get(2)) {
            (Some(k), Some(v)) => Some((k, v)),
            (None, None) => None,
            _ => return Err("K and V must both be given, or neither".into()),
        };
        let shapes = kv.map(|(k, v)| (k.shape(), v.shape()));
        let (s, layout) = spec_of(self.heads, q.shape(), shapes, self.k_transposed, self.scale)?;
        let qdata = f32s(q)?;
        let (kdata, vdata) = match kv {
            Some((k, v)) => (f32s(k)?, f32s(v)?),
            None => (qdata, qdata),
        };
        let kt;
        let kdata = if self.k_transposed {
            kt = heads_transposed(kdata, s.head_dim, s.seq_k);
            &kt[..]
        } else {
            kdata
        };
        let mask = match get(3) {
            None => Mask::None,
            Some(m) => Mask::Additive { data: f32s(m)?, strides: mask_strides(m.shape(), [s.batch, s.heads, s.seq_q, s.seq_k])? },
        };
        let params: AttentionParams = pick(&attention_candidates(&s, crate::device::cores()), variant).ok_or("no attention candidate")?;
        // The kernel writes every output element, so a pooled buffer needs no zeroing.
        let mut out = pool.take(s.batch * s.heads * s.seq_q * s.head_dim_v);
        attention_in(&layout, &s, qdata, kdata, vdata, mask, &mut out, &params).map_err(|e| e.to_string())?;
        Tensor::from_vec(out_shape(q.shape(), &s, &layout), out).map_err(|e| e.to_string())
    }
}

fn f32s(t: &Tensor) -> Result<&[f32], String> {
    t.as_slice::<f32>().map_err(|e| e.to_string())
}

/// Every `[rows, cols]` block of `x` transposed to `[cols, rows]`.
fn heads_transposed(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    if rows == 0 || cols == 0 {
        return out;
    }
    for (src, dst) in x.chunks_exact(rows * cols).zip(out.chunks_exact_mut(rows * cols)) {
        for (r, row) in src.chunks_exact(cols).enumerate() {
            for (c, v) in row.iter().enumerate() {
                dst[c * rows + r] = *v;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_strides_broadcast() {
        assert_eq!(mask_strides(&[2, 1, 1, 5], [2, 3, 4, 5]).expect("ok"), [5, 0, 0, 1]);
        assert_eq!(mask_strides(&[4, 5], [2, 3, 4, 5]).expect("ok"), [0, 0, 5, 1]);
        assert!(mask_strides(&[3, 5], [2, 3, 4, 5]).is_err());
        assert_eq!(heads_transposed(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
