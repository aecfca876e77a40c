//! `kiln::Attention` (f32): `softmax(scale Q K^T + mask) V` per (batch, head) on the fused
//! attention kernel, so the score matrix never leaves cache.

use super::{Dims, Lowered, bound_shape, dtype_of, filler, pick, step_float, step_int, tune};
use crate::kernels::{AttentionParams, AttentionSpec, Mask, attention, attention_candidates};
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

/// Strides of an additive mask broadcast over the scores `[b, h, n, m]` (0 where it repeats).
fn mask_strides(mask: &[usize], scores: [usize; 4]) -> Result<[usize; 4], String> {
    if mask.len() > 4 {
        return Err(format!("mask of shape {mask:?} has more than 4 dimensions"));
    }
    let padded: Vec<usize> = std::iter::repeat_n(1, 4 - mask.len()).chain(mask.iter().copied()).collect();
    let mut strides = [0usize; 4];
    let mut s = 1;
    for i in (0..4).rev() {
        if padded[i] != 1 && padded[i] != scores[i] {
            return Err(format!("mask of shape {mask:?} does not broadcast to the scores {scores:?}"));
        }
        strides[i] = if padded[i] == 1 { 0 } else { s };
        s *= padded[i];
    }
    Ok(strides)
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    let present = node.inputs.iter().filter(|i| i.is_some()).count();
    if (0..present).any(|i| dtype_of(g, node, i) != Some(DType::F32)) || !(3..=4).contains(&present) {
        return Ok(None);
    }
    let k_t = match node.attr_int("k_transposed").unwrap_or(0) {
        0 => false,
        1 => true,
        _ => return Ok(None),
    };
    let scale = node.attr_float("scale").unwrap_or(1.0);
    let shapes = (bound_shape(g, node, 0, dims), bound_shape(g, node, 1, dims), bound_shape(g, node, 2, dims));
    let (Some(q), Some(k), Some(v)) = shapes else { return Ok(None) };
    let Ok(s) = spec(&q, &k, &v, k_t, scale) else { return Ok(None) };
    let cands = attention_candidates(&s, crate::device::cores());
    let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
    let (qd, kd, vd) = (filler(q.iter().product()), filler(k.iter().product()), filler(v.iter().product()));
    let mut out = vec![0f32; s.batch * s.heads * s.seq_q * s.head_dim_v];
    let problem = format!("b={},h={},hk={},n={},m={},d={},dv={}", s.batch, s.heads, s.kv_heads, s.seq_q, s.seq_k, s.head_dim, s.head_dim_v);
    let variant = tune(tuner, KERNEL, problem, &names, |i| attention(&s, &qd, &kd, &vd, Mask::None, &mut out, &cands[i]).map_err(|e| e.to_string()))?;
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

pub struct AttentionStep {
    k_transposed: bool,
    scale: f32,
}

impl AttentionStep {
    pub fn load(step: &Step) -> Result<AttentionStep, String> {
        let k_transposed = match step_int(step, "k_transposed").unwrap_or(0) {
            0 => false,
            1 => true,
            other => return Err(format!("k_transposed must be 0 or 1, got {other}")),
        };
        Ok(AttentionStep { k_transposed, scale: step_float(step, "scale").unwrap_or(1.0) })
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str) -> Result<Tensor, String> {
        let get = |i: usize, what: &str| inputs.get(i).copied().flatten().ok_or_else(|| format!("{what} is missing"));
        let (q, k, v) = (get(0, "Q")?, get(1, "K")?, get(2, "V")?);
        let s = spec(q.shape(), k.shape(), v.shape(), self.k_transposed, self.scale)?;
        let kt;
        let kdata = if self.k_transposed {
            kt = heads_transposed(f32s(k)?, s.head_dim, s.seq_k);
            &kt[..]
        } else {
            f32s(k)?
        };
        let mask = match inputs.get(3).copied().flatten() {
            None => Mask::None,
            Some(m) => Mask::Additive { data: f32s(m)?, strides: mask_strides(m.shape(), [s.batch, s.heads, s.seq_q, s.seq_k])? },
        };
        let params: AttentionParams = pick(&attention_candidates(&s, crate::device::cores()), variant).ok_or("no attention candidate")?;
        let mut out = vec![0f32; s.batch * s.heads * s.seq_q * s.head_dim_v];
        attention(&s, f32s(q)?, kdata, f32s(v)?, mask, &mut out, &params).map_err(|e| e.to_string())?;
        let mut shape = q.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = s.head_dim_v;
        }
        Tensor::from_vec(shape, out).map_err(|e| e.to_string())
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
