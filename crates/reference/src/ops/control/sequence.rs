//! The basic sequence ops: SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceAt,
//! SequenceErase and SequenceLength. Positions may be negative (counted from the back).

use super::common::{opt_tensor, position, req_sequence, req_tensor, scalar_i64};
use crate::{OpCtx, OpError, Value, bail};
use kiln_tensor::Tensor;

pub fn sequence_empty(_ctx: &OpCtx, _inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    Ok(vec![Value::Sequence(Vec::new())])
}

pub fn sequence_construct(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let items: Vec<Tensor> = (0..inputs.len()).map(|i| req_tensor(inputs, i).cloned()).collect::<Result<_, _>>()?;
    if let Some(first) = items.first()
        && let Some(other) = items.iter().find(|t| t.dtype() != first.dtype())
    {
        bail!("sequence elements must share one element type, got {} and {}", first.dtype(), other.dtype());
    }
    Ok(vec![Value::Sequence(items)])
}

pub fn sequence_insert(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let seq = req_sequence(inputs, 0)?;
    let t = req_tensor(inputs, 1)?;
    if let Some(first) = seq.first()
        && first.dtype() != t.dtype()
    {
        bail!("cannot insert a {} tensor into a sequence of {}", t.dtype(), first.dtype());
    }
    let at = match opt_tensor(inputs, 2)? {
        Some(p) => position(scalar_i64(p, "position")?, seq.len(), true)?,
        None => seq.len(),
    };
    let mut out = seq.to_vec();
    out.insert(at, t.clone());
    Ok(vec![Value::Sequence(out)])
}

pub fn sequence_at(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let seq = req_sequence(inputs, 0)?;
    let at = position(scalar_i64(req_tensor(inputs, 1)?, "position")?, seq.len(), false)?;
    Ok(vec![Value::Tensor(seq[at].clone())])
}

pub fn sequence_erase(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let seq = req_sequence(inputs, 0)?;
    if seq.is_empty() {
        bail!("cannot erase from an empty sequence");
    }
    let at = match opt_tensor(inputs, 1)? {
        Some(p) => position(scalar_i64(p, "position")?, seq.len(), false)?,
        None => seq.len() - 1,
    };
    let mut out = seq.to_vec();
    out.remove(at);
    Ok(vec![Value::Sequence(out)])
}

pub fn sequence_length(_ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let seq = req_sequence(inputs, 0)?;
    Ok(vec![Value::Tensor(Tensor::scalar(seq.len() as i64))])
}
