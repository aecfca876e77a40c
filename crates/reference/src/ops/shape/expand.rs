//! Expand and Tile.

use super::common::{axis, gather_flat, index_map};
use crate::util::{broadcast_index, broadcast_shapes, ints, opt, req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Expand: broadcasts the input with the shape input (numpy rules, both ways).
pub fn expand(_ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let target = super::common::checked_shape(&ints(req(inputs, 1)?)?)?;
    let shape = broadcast_shapes(&[x.shape(), &target])?;
    super::common::checked_shape(&shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    let idx = broadcast_index(x.shape(), &shape);
    Ok(vec![gather_flat(x, shape, &idx)?])
}

/// Tile: repeats the input `repeats[a]` times along each axis `a`. Before opset 6 the
/// inputs were a count `tiles` and one `axis`.
pub fn tile(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let reps = ints(req(inputs, 1)?)?;
    let repeats: Vec<i64> = match opt(inputs, 2) {
        Some(a) if ctx.opset() < 6 => {
            let ax = axis(ints(a)?.first().copied().unwrap_or(0), x.rank())?;
            let mut r = vec![1; x.rank()];
            r[ax] = reps.first().copied().unwrap_or(1);
            r
        }
        _ => reps,
    };
    if repeats.len() != x.rank() || repeats.iter().any(|&r| r < 0) {
        bail!("repeats {repeats:?} must hold one non-negative count per input axis (rank {})", x.rank());
    }
    let dims: Vec<i64> = x.shape().iter().zip(&repeats).map(|(&d, &r)| (d as i64).saturating_mul(r)).collect();
    let shape = super::common::checked_shape(&dims)?;
    let st = strides(x.shape());
    let idx = index_map(&shape, |o| o.iter().enumerate().map(|(a, &i)| (i % x.shape()[a]) * st[a]).sum());
    Ok(vec![gather_flat(x, shape, &idx)?])
}
