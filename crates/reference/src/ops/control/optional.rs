//! Optional, OptionalHasElement and OptionalGetElement. From opset 18 the latter two also take
//! a plain tensor or sequence (a present value) and OptionalHasElement an absent input (empty).

use super::common::{opt_value, req_value};
use crate::{OpCtx, OpError, Value, bail};
use kiln_tensor::Tensor;

pub fn optional(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    Ok(vec![Value::Optional(opt_value(inputs, 0).map(|v| Box::new(v.clone())))])
}

pub fn optional_has_element(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let has = match opt_value(inputs, 0) {
        None | Some(Value::Optional(None)) => false,
        Some(_) => true,
    };
    Ok(vec![Value::Tensor(Tensor::scalar(has))])
}

pub fn optional_get_element(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    match req_value(inputs, 0)? {
        Value::Optional(Some(v)) => Ok(vec![(**v).clone()]),
        Value::Optional(None) => bail!("the optional input is empty"),
        v => Ok(vec![v.clone()]),
    }
}
