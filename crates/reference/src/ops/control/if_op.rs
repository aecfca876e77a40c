//! If: runs `then_branch` or `else_branch` by a boolean condition; the branch's outputs are
//! the node's outputs (tensors, sequences or optionals).

use super::common::{req_tensor, scalar_bool};
use crate::{OpCtx, OpError, Value};

pub fn if_op(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let cond = scalar_bool(req_tensor(inputs, 0)?, "cond")?;
    let branch = ctx.graph(if cond { "then_branch" } else { "else_branch" })?;
    ctx.run_subgraph(branch, Vec::new())
}
