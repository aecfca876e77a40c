//! kiln::Attention: `MatMul(Softmax(MatMul(Q, K') * scale + mask, axis=-1), V)`.
//!
//! Inputs Q (.., n, d), K, V (.., m, dv) and an optional additive mask (broadcast to the
//! scores). Attributes: `k_transposed` (int, default 0): 0 when K is given as (.., m, d) and
//! K' is K with its last two axes swapped, 1 when K is already given as (.., d, m) and K' = K;
//! `scale` (float, optional): a factor applied to the scores (absent: none).
//!
//! `num_heads` (int, optional) selects the heads-in-columns layout: Q is `[b, n, h*d]`, K
//! `[b, m, h*d]`, V `[b, m, h*dv]` (head `i` in columns `i*d..(i+1)*d`) and the output is
//! `[b, n, h*dv]`; the op is then `Reshape(Transpose(attention(heads(Q), heads(K), heads(V))))`
//! where `heads(X) = Transpose(Reshape(X, [b, s, h, -1]), [0, 2, 1, 3])` (`k_transposed` must
//! be 0). With `num_heads`, K and V may be absent: Q then holds Q, K and V side by side,
//! `[b, n, 3*h*d]` (the projections' outputs of one GEMM), split in three equal column ranges.

use super::common::step;
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::{Data, Tensor};
use std::collections::BTreeMap;

pub fn attention(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let mask = opt(inputs, 3);
    let Some(heads) = ctx.node.attr_int("num_heads") else {
        return Ok(vec![core(ctx, req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?, mask)?]);
    };
    if heads < 1 {
        bail!("attribute 'num_heads' must be positive, got {heads}");
    }
    if ctx.attr_i("k_transposed", 0) != 0 {
        bail!("attribute 'k_transposed' must be 0 with 'num_heads'");
    }
    let q = req(inputs, 0)?;
    if q.rank() != 3 {
        bail!("Attention with num_heads takes Q of rank 3, got shape {:?}", q.shape());
    }
    let packed;
    let (q, k, v) = match (opt(inputs, 1), opt(inputs, 2)) {
        (Some(k), Some(v)) => (q, k, v),
        (None, None) => {
            packed = thirds(ctx, q)?;
            (&packed[0], &packed[1], &packed[2])
        }
        _ => bail!("Attention with num_heads takes K and V both, or neither (Q holding Q, K, V)"),
    };
    let (q4, k4, v4) = (split_heads(ctx, q, heads)?, split_heads(ctx, k, heads)?, split_heads(ctx, v, heads)?);
    let o4 = core(ctx, &q4, &k4, &v4, mask)?;
    let o = step(ctx, "Transpose", perm(&[0, 2, 1, 3]), &[Some(&o4)])?;
    Ok(vec![step(ctx, "Reshape", BTreeMap::new(), &[Some(&o), Some(&shape_tensor(&[0, 0, -1])?)])?])
}

/// The plain op over (.., n, d) operands.
fn core(ctx: &OpCtx, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor, OpError> {
    let none = BTreeMap::new;
    let k_t = match ctx.attr_i("k_transposed", 0) {
        0 => {
            let r = k.rank();
            if r < 2 {
                bail!("Attention K must have rank >= 2, got shape {:?}", k.shape());
            }
            let mut p: Vec<i64> = (0..r as i64).collect();
            p.swap(r - 2, r - 1);
            Some(step(ctx, "Transpose", perm(&p), &[Some(k)])?)
        }
        1 => None,
        other => bail!("attribute 'k_transposed' must be 0 or 1, got {other}"),
    };
    let mut scores = step(ctx, "MatMul", none(), &[Some(q), Some(k_t.as_ref().unwrap_or(k))])?;
    if let Some(s) = ctx.node.attr_float("scale") {
        let s = Tensor::new(vec![], Data::from_f64_vec(scores.dtype(), &[f64::from(s)])?)?;
        scores = step(ctx, "Mul", none(), &[Some(&scores), Some(&s)])?;
    }
    if let Some(m) = mask {
        scores = step(ctx, "Add", none(), &[Some(&scores), Some(m)])?;
    }
    let attrs = BTreeMap::from([("axis".to_string(), Attr::Int(-1))]);
    let p = step(ctx, "Softmax", attrs, &[Some(&scores)])?;
    step(ctx, "MatMul", none(), &[Some(&p), Some(v)])
}

fn perm(p: &[i64]) -> BTreeMap<String, Attr> {
    BTreeMap::from([("perm".to_string(), Attr::Ints(p.to_vec()))])
}

fn shape_tensor(dims: &[i64]) -> Result<Tensor, OpError> {
    Ok(Tensor::from_vec(vec![dims.len()], dims.to_vec())?)
}

/// `[b, s, h*d]` -> `[b, h, s, d]`.
fn split_heads(ctx: &OpCtx, x: &Tensor, heads: i64) -> Result<Tensor, OpError> {
    let (r, last) = (x.rank(), x.shape().last().copied().unwrap_or(0));
    if r != 3 || last as i64 % heads != 0 {
        bail!("Attention operand of shape {:?} does not split into {heads} heads", x.shape());
    }
    let x4 = step(ctx, "Reshape", BTreeMap::new(), &[Some(x), Some(&shape_tensor(&[0, 0, heads, -1])?)])?;
    step(ctx, "Transpose", perm(&[0, 2, 1, 3]), &[Some(&x4)])
}

/// `[b, s, 3c]` -> three `[b, s, c]` column ranges.
fn thirds(ctx: &OpCtx, x: &Tensor) -> Result<Vec<Tensor>, OpError> {
    let last = x.shape().last().copied().unwrap_or(0);
    if last % 3 != 0 {
        bail!("packed Q, K, V of shape {:?}: the last axis is not a multiple of 3", x.shape());
    }
    let c = (last / 3) as i64;
    (0..3)
        .map(|i| {
            let (starts, ends, axes) = (shape_tensor(&[i * c])?, shape_tensor(&[(i + 1) * c])?, shape_tensor(&[-1])?);
            step(ctx, "Slice", BTreeMap::new(), &[Some(x), Some(&starts), Some(&ends), Some(&axes)])
        })
        .collect()
}
