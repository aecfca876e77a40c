//! ai.onnx.ml LabelEncoder: maps each input element through a key -> value table given as
//! `keys_*`/`values_*` attributes (strings, int64s, floats or, from opset 4, tensors), with a
//! default for keys not in the table. Opset 1 maps strings to their index in `classes_strings`
//! (and int64 indices back to strings).

use super::common::take;
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::{DType, Data, Tensor};
use std::collections::HashMap;

/// A table key: floats compare by value, with all NaNs equal and -0.0 == 0.0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Str(String),
    Int(i64),
    Float(u64),
}

impl Key {
    fn float(x: f64) -> Key {
        if x.is_nan() {
            Key::Float(f64::NAN.to_bits())
        } else if x == 0.0 {
            Key::Float(0)
        } else {
            Key::Float(x.to_bits())
        }
    }
}

/// The elements of `t` as table keys.
pub fn keys_of(t: &Tensor) -> Result<Vec<Key>, OpError> {
    Ok(match t.data() {
        Data::String(v) => v.iter().map(|s| Key::Str(s.clone())).collect(),
        _ if t.dtype().is_float() => t.to_f64_vec()?.into_iter().map(Key::float).collect(),
        _ => t.to_i64_vec()?.into_iter().map(Key::Int).collect(),
    })
}

/// One of the `{prefix}_strings`, `{prefix}_int64s`, `{prefix}_floats`, `{prefix}_tensor`
/// attributes as a 1-D tensor.
fn table_attr(ctx: &OpCtx, prefix: &str) -> Result<Option<Tensor>, OpError> {
    let node = ctx.node;
    if let Some(t) = node.attr_tensor(&format!("{prefix}_tensor")) {
        return Ok(Some(t.clone().reshape(vec![t.len()])?));
    }
    if let Some(v) = node.attr(&format!("{prefix}_strings")).and_then(Attr::as_strings) {
        return Ok(Some(Tensor::new(vec![v.len()], Data::String(v))?));
    }
    if let Some(v) = node.attr_ints(&format!("{prefix}_int64s")) {
        return Ok(Some(Tensor::from_vec(vec![v.len()], v.to_vec())?));
    }
    if let Some(v) = node.attr_floats(&format!("{prefix}_floats")) {
        return Ok(Some(Tensor::from_vec(vec![v.len()], v.to_vec())?));
    }
    Ok(None)
}

/// The value for keys not in the table, as a one-element tensor of `dtype`.
fn default_value(ctx: &OpCtx, dtype: DType) -> Result<Tensor, OpError> {
    if let Some(t) = ctx.node.attr_tensor("default_tensor") {
        if t.len() != 1 || t.dtype() != dtype {
            bail!("attribute 'default_tensor' must be one {dtype} element, got {} of shape {:?}", t.dtype(), t.shape());
        }
        return Ok(t.clone().reshape(vec![1])?);
    }
    Ok(match dtype {
        DType::String => Tensor::new(vec![1], Data::String(vec![ctx.attr_s("default_string", "_Unused").to_string()]))?,
        DType::I64 => Tensor::from_vec(vec![1], vec![ctx.node.attr_int("default_int64").unwrap_or(-1)])?,
        DType::F32 => Tensor::from_vec(vec![1], vec![ctx.node.attr_float("default_float").unwrap_or(-0.0)])?,
        d if d.is_float() => Tensor::new(vec![1], Data::from_f64_vec(d, &[-0.0])?)?,
        d => Tensor::new(vec![1], Data::from_f64_vec(d, &[-1.0])?)?,
    })
}

pub fn label_encoder(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if let Some(classes) = ctx.node.attr("classes_strings").and_then(Attr::as_strings) {
        return classes_encoder(ctx, x, classes);
    }
    let (Some(keys), Some(values)) = (table_attr(ctx, "keys")?, table_attr(ctx, "values")?) else {
        bail!("LabelEncoder needs one keys_* and one values_* attribute");
    };
    if keys.len() != values.len() {
        bail!("LabelEncoder has {} keys but {} values", keys.len(), values.len());
    }
    let table: HashMap<Key, usize> = keys_of(&keys)?.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
    let fallback = values.len();
    let idx: Vec<usize> = keys_of(x)?.iter().map(|k| table.get(k).copied().unwrap_or(fallback)).collect();
    let default = default_value(ctx, values.dtype())?;
    let all = super::common::concat_data(&[values.data(), default.data()])?;
    Ok(vec![Tensor::new(x.shape().to_vec(), take(&all, &idx)?)?])
}

/// Opset 1: strings -> index in `classes_strings` (else `default_int64`), or int64 indices ->
/// class strings (else `default_string`).
fn classes_encoder(ctx: &OpCtx, x: &Tensor, classes: Vec<String>) -> Result<Vec<Tensor>, OpError> {
    let shape = x.shape().to_vec();
    if let Data::String(v) = x.data() {
        let table: HashMap<&str, i64> = classes.iter().enumerate().map(|(i, s)| (s.as_str(), i as i64)).collect();
        let default = ctx.node.attr_int("default_int64").unwrap_or(-1);
        let out: Vec<i64> = v.iter().map(|s| table.get(s.as_str()).copied().unwrap_or(default)).collect();
        return Ok(vec![Tensor::from_vec(shape, out)?]);
    }
    let default = ctx.attr_s("default_string", "_Unused");
    let out: Vec<String> = x
        .to_i64_vec()?
        .into_iter()
        .map(|i| usize::try_from(i).ok().and_then(|i| classes.get(i)).map_or_else(|| default.to_string(), Clone::clone))
        .collect();
    Ok(vec![Tensor::new(shape, Data::String(out))?])
}
