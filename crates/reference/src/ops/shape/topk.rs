//! TopK.

use super::common::{axis, elem_order, take};
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// TopK: the `k` largest (or smallest) entries along `axis` and their indices; `k` is an
/// attribute before opset 10 and an input after. Ties keep the lower index first.
pub fn top_k(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let k = match opt(inputs, 1) {
        Some(t) => match t.to_i64_vec()?.as_slice() {
            [k] => *k,
            v => bail!("K must hold one integer, got {v:?}"),
        },
        None => ctx.req_i("k")?,
    };
    let ax = axis(ctx.attr_i("axis", -1), x.rank())?;
    if x.rank() == 0 {
        bail!("TopK needs rank 1 or more");
    }
    let dim = x.shape()[ax];
    let k = usize::try_from(k).ok().filter(|&k| k <= dim).ok_or_else(|| OpError::Invalid(format!("K must be in [0, {dim}], got {k}")))?;
    let largest = ctx.attr_i("largest", 1) != 0;
    let order = elem_order(x.data())?;
    let outer: usize = x.shape()[..ax].iter().product();
    let inner: usize = x.shape()[ax + 1..].iter().product();
    let n_out = outer * k * inner;
    let mut src = vec![0usize; n_out];
    let mut pos = vec![0i64; n_out];
    let mut lane: Vec<usize> = Vec::with_capacity(dim);
    for o in 0..outer {
        for i in 0..inner {
            let base = o * dim * inner + i;
            lane.clear();
            lane.extend((0..dim).map(|d| base + d * inner));
            // Stable sort: equal values keep their index order.
            lane.sort_by(|&a, &b| {
                let c = order(a, b);
                if largest { c.reverse() } else { c }
            });
            for (r, &f) in lane.iter().take(k).enumerate() {
                let out = (o * k + r) * inner + i;
                src[out] = f;
                pos[out] = ((f - base) / inner) as i64;
            }
        }
    }
    let mut shape = x.shape().to_vec();
    shape[ax] = k;
    Ok(vec![Tensor::new(shape.clone(), take(x.data(), &src)?)?, Tensor::from_vec(shape, pos)?])
}
