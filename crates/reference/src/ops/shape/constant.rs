//! Constant and ConstantOfShape.

use super::common::checked_shape;
use crate::util::{ints, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

/// Constant: exactly one of `value`, `sparse_value` (densified by the importer),
/// `value_float(s)`, `value_int(s)`, `value_string(s)`.
pub fn constant(ctx: &OpCtx, _inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let node = ctx.node;
    let t = if let Some(t) = node.attr_tensor("value").or_else(|| node.attr_tensor("sparse_value")) {
        t.clone()
    } else if let Some(v) = node.attr_float("value_float") {
        Tensor::scalar(v)
    } else if let Some(v) = ctx.attr_floats("value_floats") {
        Tensor::from_vec(vec![v.len()], v.to_vec())?
    } else if let Some(v) = node.attr_int("value_int") {
        Tensor::scalar(v)
    } else if let Some(v) = ctx.attr_ints("value_ints") {
        Tensor::from_vec(vec![v.len()], v.to_vec())?
    } else if let Some(v) = node.attr_str("value_string") {
        Tensor::new(vec![], Data::String(vec![v.to_string()]))?
    } else if let Some(v) = node.attr("value_strings").and_then(|a| a.as_strings()) {
        Tensor::new(vec![v.len()], Data::String(v))?
    } else {
        bail!("Constant needs one of the attributes value, sparse_value, value_float(s), value_int(s), value_string(s)");
    };
    Ok(vec![t])
}

/// ConstantOfShape: a tensor of the shape given by input 0, every element the one element
/// of attribute `value` (default: f32 zero).
pub fn constant_of_shape(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let shape = checked_shape(&ints(req(inputs, 0)?)?)?;
    let n: usize = shape.iter().product();
    let value = match ctx.node.attr_tensor("value") {
        Some(v) if v.len() == 1 => v.clone(),
        Some(v) => bail!("attribute 'value' must hold one element, it holds {}", v.len()),
        None => Tensor::scalar(0f32),
    };
    let data = super::common::take(value.data(), &vec![0; n])?;
    Ok(vec![Tensor::new(shape, data)?])
}
