//! ai.onnx.ml ZipMap: each row of a float X [N, C] (or [C], one row) becomes a map from the
//! C class labels (`classlabels_strings` or `classlabels_int64s`) to that row's values.

use crate::ops::control::common::req_tensor;
use crate::{Map, OpCtx, OpError, Value, bail};
use kiln_ir::Attr;
use kiln_tensor::{DType, Data, Tensor};

pub fn zipmap(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let x = req_tensor(inputs, 0)?;
    if x.dtype() != DType::F32 {
        bail!("ZipMap needs a float tensor, got {}", x.dtype());
    }
    let keys = match (ctx.node.attr("classlabels_strings").and_then(Attr::as_strings), ctx.attr_ints("classlabels_int64s")) {
        (Some(s), None) => Tensor::new(vec![s.len()], Data::String(s))?,
        (None, Some(i)) => Tensor::from_vec(vec![i.len()], i.to_vec())?,
        _ => bail!("ZipMap needs exactly one of 'classlabels_strings' and 'classlabels_int64s'"),
    };
    let c = keys.len();
    let rows = match *x.shape() {
        [n] if n == c => 1,
        [r, n] if n == c => r,
        ref s => bail!("ZipMap input must be [N, {c}] or [{c}] for {c} labels, got {s:?}"),
    };
    let v = x.as_slice::<f32>()?;
    let maps = (0..rows)
        .map(|r| Ok(Map { keys: keys.clone(), values: Tensor::from_vec(vec![c], v[r * c..(r + 1) * c].to_vec())? }))
        .collect::<Result<Vec<_>, OpError>>()?;
    Ok(vec![Value::Maps(maps)])
}
