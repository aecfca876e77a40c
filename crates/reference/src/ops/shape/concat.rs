//! Concat.

use super::common::{axis, concat as concat_data, take};

use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Concat: the inputs joined along `axis` (all other dims equal).
pub fn concat(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let xs: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
    let Some(first) = xs.first() else { bail!("Concat needs at least one input") };
    let rank = first.rank();
    let ax = axis(ctx.attr_i("axis", if ctx.opset() < 4 { 1 } else { i64::MAX }), rank)
        .map_err(|_| OpError::Invalid(format!("attribute 'axis' is missing or out of range for rank {rank}")))?;
    let mut shape = first.shape().to_vec();
    shape[ax] = 0;
    for x in &xs {
        let same = x.rank() == rank && (0..rank).all(|i| i == ax || x.shape()[i] == first.shape()[i]);
        if !same {
            bail!("cannot concatenate shapes {:?} and {:?} along axis {ax}", first.shape(), x.shape());
        }
        shape[ax] += x.shape()[ax];
    }
    Ok(vec![join(&xs, ax, shape)?])
}

/// Joins checked tensors along `ax` into `shape`.
pub fn join(xs: &[&Tensor], ax: usize, shape: Vec<usize>) -> Result<Tensor, OpError> {
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..].iter().product();
    let all = concat_data(&xs.iter().map(|x| x.data()).collect::<Vec<_>>())?;
    let mut offsets = Vec::with_capacity(xs.len());
    let mut off = 0;
    for x in xs {
        offsets.push(off);
        off += x.len();
    }
    let mut idx = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for (x, &base) in xs.iter().zip(&offsets) {
            let chunk = x.shape()[ax] * inner;
            idx.extend(base + o * chunk..base + (o + 1) * chunk);
        }
    }
    Ok(Tensor::new(shape, take(&all, &idx)?)?)
}
