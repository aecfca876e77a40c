//! Split.

use super::common::{axis, gather_flat};
use crate::util::{ints, opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Split: `split` sizes from the attribute (before opset 13) or input 1; else `num_outputs`
/// parts (opset 18; the last may be smaller), else as many equal parts as outputs.
pub fn split(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let ax = axis(ctx.attr_i("axis", 0), x.rank())?;
    let dim = x.shape()[ax];
    let sizes: Vec<usize> = match opt(inputs, 1).map(ints).transpose()?.or_else(|| ctx.attr_ints("split").map(<[i64]>::to_vec)) {
        Some(s) => {
            if s.iter().any(|&v| v < 0) || s.iter().sum::<i64>() != dim as i64 {
                bail!("split sizes {s:?} must be non-negative and sum to {dim}, the size of axis {ax}");
            }
            s.iter().map(|&v| v as usize).collect()
        }
        None => {
            let n = match ctx.node.attr_int("num_outputs") {
                Some(n) if n > 0 => n as usize,
                Some(n) => bail!("attribute 'num_outputs' must be positive, got {n}"),
                None => ctx.node.outputs.len(),
            };
            if n == 0 {
                bail!("Split has no outputs");
            }
            let part = if ctx.has_attr("num_outputs") {
                dim.div_ceil(n)
            } else if dim % n == 0 {
                dim / n
            } else {
                bail!("axis {ax} of size {dim} cannot be split into {n} equal parts");
            };
            let mut left = dim;
            (0..n)
                .map(|_| {
                    let s = part.min(left);
                    left -= s;
                    s
                })
                .collect()
        }
    };
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for s in sizes {
        out.push(narrow(x, ax, start, s)?);
        start += s;
    }
    Ok(out)
}

/// Elements `start..start + len` of axis `ax` (checked by the caller).
pub fn narrow(x: &Tensor, ax: usize, start: usize, len: usize) -> Result<Tensor, OpError> {
    let dim = x.shape()[ax];
    let outer: usize = x.shape()[..ax].iter().product();
    let inner: usize = x.shape()[ax + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let base = (o * dim + start) * inner;
        idx.extend(base..base + len * inner);
    }
    let mut shape = x.shape().to_vec();
    shape[ax] = len;
    gather_flat(x, shape, &idx)
}
