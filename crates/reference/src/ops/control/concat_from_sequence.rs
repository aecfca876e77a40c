//! ConcatFromSequence: concatenates a sequence's tensors along `axis`, or stacks them along a
//! new axis when `new_axis` is 1 (then `axis` may also be the rank, i.e. the new last axis).

use super::common::{concat, req_sequence, stack};
use crate::util::axis;
use crate::{OpCtx, OpError, Value, bail};
use kiln_tensor::Tensor;

pub fn concat_from_sequence(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let seq = req_sequence(inputs, 0)?;
    let Some(first) = seq.first() else { bail!("ConcatFromSequence needs a non-empty sequence") };
    let new_axis = ctx.attr_i("new_axis", 0);
    let refs: Vec<&Tensor> = seq.iter().collect();
    let out = match new_axis {
        0 => concat(&refs, axis(ctx.req_i("axis")?, first.rank())?)?,
        1 => stack(&refs, axis(ctx.req_i("axis")?, first.rank() + 1)?)?,
        other => bail!("attribute 'new_axis' must be 0 or 1, got {other}"),
    };
    Ok(vec![Value::Tensor(out)])
}
