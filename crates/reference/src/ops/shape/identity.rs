//! Identity (tensors, sequences and optionals) and Dropout in inference.

use crate::util::{opt, req};
use crate::{OpCtx, OpError, Value, bail};
use kiln_tensor::{Data, Tensor};

/// Identity: the input value, whatever its kind.
pub fn identity(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    match inputs.first().copied().flatten() {
        Some(v) => Ok(vec![v.clone()]),
        None => bail!("input 0 is required"),
    }
}

/// Dropout. In inference (no `training_mode`, or false, or a zero ratio) it is the identity
/// with an all-true mask. In training with a ratio above zero the output is random, which a
/// reference cannot reproduce: that case is refused.
pub fn dropout(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let ratio = match opt(inputs, 1) {
        Some(r) => r.to_f64_vec()?.first().copied().unwrap_or(0.5),
        None => ctx.attr_f("ratio", 0.5) as f64,
    };
    let training = match opt(inputs, 2) {
        Some(t) => t.to_f64_vec()?.first().is_some_and(|&v| v != 0.0),
        // Before opset 7 the `is_test` attribute chose the mode (0: training).
        None => ctx.opset() < 7 && ctx.attr_i("is_test", 0) == 0 && ctx.has_attr("is_test"),
    };
    if training && ratio > 0.0 {
        return Err(OpError::Unsupported("Dropout in training mode with a ratio above zero is random".into()));
    }
    let mask = Tensor::new(x.shape().to_vec(), Data::Bool(vec![true; x.len()]))?;
    // Before opset 10 the mask had the input's type.
    let mask = if ctx.opset() < 10 { mask.cast(x.dtype())? } else { mask };
    Ok(vec![x.clone(), mask])
}
