//! Shape (with start/end) and Size.

use crate::util::req;
use crate::{OpCtx, OpError};
use kiln_tensor::Tensor;

/// Shape: the input's dims `start..end` (clamped to the rank; negatives count from the end).
pub fn shape(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let r = x.rank() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(ctx.attr_i("start", 0));
    let end = clamp(ctx.attr_i("end", r));
    let dims: Vec<i64> = x.shape().iter().skip(start).take(end.saturating_sub(start)).map(|&d| d as i64).collect();
    Ok(vec![Tensor::from_vec(vec![dims.len()], dims)?])
}

/// Size: the input's element count as an i64 scalar.
pub fn size(_ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    Ok(vec![Tensor::scalar(req(inputs, 0)?.len() as i64)])
}
