//! Loop: runs `body` while the trip count and the condition allow. Body inputs are
//! (iteration_num, cond, carried...), outputs (cond, carried..., scan...); the node returns the
//! final carried values, then each scan output stacked along a new axis 0.

use super::common::{empty_stacked, opt_tensor, req_value, scalar_bool, scalar_i64, stack, value_tensor};
use crate::{OpCtx, OpError, Value, bail};
use kiln_ir::Graph;
use kiln_tensor::{DType, Dim, Tensor};

pub fn loop_op(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let body = ctx.graph("body")?;
    let max_trips = opt_tensor(inputs, 0)?.map(|t| scalar_i64(t, "M")).transpose()?;
    let cond_given = opt_tensor(inputs, 1)?.map(|t| scalar_bool(t, "cond")).transpose()?;
    if max_trips.is_none() && cond_given.is_none() {
        bail!("Loop with neither a trip count nor a condition never ends");
    }
    let mut carried: Vec<Value> = (2..inputs.len()).map(|i| req_value(inputs, i).cloned()).collect::<Result<_, _>>()?;
    let n_carried = carried.len();
    let n_out = body.outputs.len();
    if n_out < 1 + n_carried {
        bail!("the body has {n_out} outputs, but Loop needs 1 + {n_carried} (cond and the carried values)");
    }
    let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); n_out - 1 - n_carried];
    let mut cond = cond_given.unwrap_or(true);
    let mut iter: i64 = 0;
    while cond && max_trips.is_none_or(|m| iter < m) {
        let mut body_in = vec![Value::Tensor(Tensor::scalar(iter)), Value::Tensor(Tensor::scalar(cond))];
        body_in.append(&mut carried);
        let outs = ctx.run_subgraph(body, body_in)?;
        if outs.len() != n_out {
            bail!("the body produced {} outputs, expected {n_out}", outs.len());
        }
        let mut outs = outs.into_iter();
        let cond_out = outs.next().map(|v| value_tensor(v, "the body's condition output")).transpose()?;
        // Without a `cond` input the body's condition is ignored (a plain for loop).
        if cond_given.is_some()
            && let Some(c) = cond_out
        {
            cond = scalar_bool(&c, "cond")?;
        }
        carried = outs.by_ref().take(n_carried).collect();
        for (acc, v) in scans.iter_mut().zip(outs) {
            acc.push(value_tensor(v, "a scan output")?);
        }
        iter += 1;
    }
    let mut result = carried;
    for (k, parts) in scans.iter().enumerate() {
        let stacked = if parts.is_empty() {
            empty_scan_output(body, 1 + n_carried + k)
        } else {
            let refs: Vec<&Tensor> = parts.iter().collect();
            stack(&refs, 0)?
        };
        result.push(Value::Tensor(stacked));
    }
    Ok(result)
}

/// A scan output of zero iterations: typed and shaped from the body's declared output where
/// it says so (unknown dims become 0), else an empty f32 vector.
pub fn empty_scan_output(body: &Graph, output: usize) -> Tensor {
    let info = body.outputs.get(output).map(|&o| body.value(o));
    let dtype = info.and_then(|i| i.dtype).unwrap_or(DType::F32);
    let dims: Vec<usize> = info
        .and_then(|i| i.shape.as_ref())
        .map(|s| s.0.iter().map(|d| if let Dim::Known(k) = d { *k } else { 0 }).collect())
        .unwrap_or_default();
    empty_stacked(dtype, &dims)
}
