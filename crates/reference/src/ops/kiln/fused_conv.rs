//! kiln::FusedConv: `activation(Conv(X, W, B))`. Inputs and attributes are Conv's, plus the
//! activation attributes of `common::activation`.

use super::common::{activation, main_attrs, step};
use crate::{OpCtx, OpError};
use kiln_tensor::Tensor;

pub fn fused_conv(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let y = step(ctx, "Conv", main_attrs(ctx), inputs)?;
    Ok(vec![activation(ctx, y)?])
}
