//! SplitToSequence: splits a tensor along `axis` into a sequence: into pieces of the sizes in
//! a 1-D `split`, into equal pieces of a scalar `split` (the last may be shorter), or, without
//! `split`, into pieces of size 1 (with the axis dropped when `keepdims` is 0).

use super::common::{narrow, opt_tensor, req_tensor, select};
use crate::util::{axis, ints};
use crate::{OpCtx, OpError, Value, bail};
use kiln_tensor::Tensor;

pub fn split_to_sequence(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let x = req_tensor(inputs, 0)?;
    if x.rank() == 0 {
        bail!("SplitToSequence needs a tensor of rank >= 1");
    }
    let ax = axis(ctx.attr_i("axis", 0), x.rank())?;
    let n = x.shape()[ax];
    let keepdims = ctx.attr_i("keepdims", 1);
    if keepdims != 0 && keepdims != 1 {
        bail!("attribute 'keepdims' must be 0 or 1, got {keepdims}");
    }
    let sizes: Vec<usize> = match opt_tensor(inputs, 1)? {
        None => {
            let items: Vec<Tensor> = if keepdims == 1 {
                (0..n).map(|i| narrow(x, ax, i, 1)).collect::<Result<_, _>>()?
            } else {
                (0..n).map(|i| select(x, ax, i)).collect::<Result<_, _>>()?
            };
            return Ok(vec![Value::Sequence(items)]);
        }
        Some(s) if s.rank() == 0 => {
            let k = ints(s)?.first().copied().unwrap_or(0);
            if k <= 0 {
                bail!("'split' must be positive, got {k}");
            }
            let k = k as usize;
            (0..n.div_ceil(k)).map(|i| k.min(n - i * k)).collect()
        }
        Some(s) if s.rank() == 1 => {
            let v = ints(s)?;
            if v.iter().any(|&d| d < 0) || v.iter().sum::<i64>() != n as i64 {
                bail!("'split' sizes {v:?} must be non-negative and add up to {n}");
            }
            v.iter().map(|&d| d as usize).collect()
        }
        Some(s) => bail!("'split' must be a scalar or 1-D, got shape {:?}", s.shape()),
    };
    let mut items = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for len in sizes {
        items.push(narrow(x, ax, start, len)?);
        start += len;
    }
    Ok(vec![Value::Sequence(items)])
}
