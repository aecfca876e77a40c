//! SequenceMap: runs `body` once per element of the input sequence. Extra inputs that are
//! sequences contribute their element at the same position; tensors are passed whole. Each
//! body output is collected into an output sequence.

use super::common::{req_sequence, req_value, value_tensor};
use crate::{OpCtx, OpError, Value, bail};
use kiln_tensor::Tensor;

pub fn sequence_map(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let body = ctx.graph("body")?;
    let n = req_sequence(inputs, 0)?.len();
    let extra: Vec<&Value> = (0..inputs.len()).map(|i| req_value(inputs, i)).collect::<Result<_, _>>()?;
    for (i, v) in extra.iter().enumerate() {
        match v {
            Value::Sequence(s) if s.len() != n => bail!("input {i} is a sequence of {} tensors, expected {n}", s.len()),
            Value::Optional(_) => bail!("input {i} must be a tensor or a sequence, found an optional"),
            _ => {}
        }
    }
    let mut outs: Vec<Vec<Tensor>> = vec![Vec::with_capacity(n); body.outputs.len()];
    for pos in 0..n {
        let body_in: Vec<Value> = extra
            .iter()
            .map(|v| match v {
                Value::Sequence(s) => Value::Tensor(s[pos].clone()),
                other => (*other).clone(),
            })
            .collect();
        let res = ctx.run_subgraph(body, body_in)?;
        if res.len() != outs.len() {
            bail!("the body produced {} outputs, expected {}", res.len(), outs.len());
        }
        for (acc, v) in outs.iter_mut().zip(res) {
            acc.push(value_tensor(v, "a SequenceMap body output")?);
        }
    }
    Ok(outs.into_iter().map(Value::Sequence).collect())
}
