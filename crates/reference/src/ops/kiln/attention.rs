//! kiln::Attention: `MatMul(Softmax(MatMul(Q, K') * scale + mask, axis=-1), V)`.
//!
//! Inputs Q (.., n, d), K, V (.., m, dv) and an optional additive mask (broadcast to the
//! scores). Attributes: `k_transposed` (int, default 0): 0 when K is given as (.., m, d) and
//! K' is K with its last two axes swapped, 1 when K is already given as (.., d, m) and K' = K;
//! `scale` (float, optional): a factor applied to the scores (absent: none).

use super::common::step;
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::{Data, Tensor};
use std::collections::BTreeMap;

pub fn attention(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (q, k, v, mask) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?, opt(inputs, 3));
    let none = BTreeMap::new;
    let k_t = match ctx.attr_i("k_transposed", 0) {
        0 => {
            let r = k.rank();
            if r < 2 {
                bail!("Attention K must have rank >= 2, got shape {:?}", k.shape());
            }
            let mut perm: Vec<i64> = (0..r as i64).collect();
            perm.swap(r - 2, r - 1);
            Some(step(ctx, "Transpose", BTreeMap::from([("perm".to_string(), Attr::Ints(perm))]), &[Some(k)])?)
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
    Ok(vec![step(ctx, "MatMul", none(), &[Some(&p), Some(v)])?])
}
