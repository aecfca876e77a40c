//! Row-wise f32 ops on the vectorised row kernels: `Softmax` over its axis when that axis
//! runs to the end (opset 13+: the last axis; before 13: the rows of the 2-D coercion) and
//! `LayerNormalization` over its trailing axes (one output).

use super::{Dims, Lowered, bound_shape, dtype_of, filler, pick, step_float, step_int, tune};
use crate::kernels::{RowParams, layer_norm, row_candidates, softmax};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.rows";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Softmax,
    LayerNorm { eps: f32 },
}

/// The first axis of a row: what `axis` means for this op and opset, or None when the op
/// normalises over something that does not run to the end.
fn row_start(op: Op, axis: Option<i64>, opset: i64, rank: usize) -> Option<usize> {
    let a = match op {
        Op::Softmax if opset < 13 => axis.unwrap_or(1),
        Op::Softmax => {
            let a = axis.unwrap_or(-1);
            // From 13 on softmax runs along one axis: a row only when it is the last one.
            if a != -1 && a != rank as i64 - 1 {
                return None;
            }
            a
        }
        Op::LayerNorm { .. } => axis.unwrap_or(-1),
    };
    let a = if a < 0 { a + rank as i64 } else { a };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

fn op_of(name: &str, eps: Option<f32>) -> Option<Op> {
    match name {
        "Softmax" => Some(Op::Softmax),
        "LayerNormalization" => Some(Op::LayerNorm { eps: eps.unwrap_or(1e-5) }),
        _ => None,
    }
}

pub fn covers(node: &Node) -> bool {
    node.domain.is_empty() && op_of(&node.op_type, None).is_some()
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    let Some(op) = op_of(&node.op_type, node.attr_float("epsilon")) else { return Ok(None) };
    let outputs = node.outputs.iter().filter(|o| o.is_some()).count();
    let inputs_f32 = (0..node.inputs.len()).all(|i| node.inputs[i].is_none() || dtype_of(g, node, i) == Some(DType::F32));
    if outputs != 1 || !inputs_f32 {
        return Ok(None);
    }
    if matches!(op, Op::LayerNorm { .. }) && node.attr_int("stash_type").is_some_and(|s| s != 1) {
        return Ok(None);
    }
    let Some(shape) = bound_shape(g, node, 0, dims) else { return Ok(None) };
    let Some(start) = row_start(op, node.attr_int("axis"), node.opset, shape.len()) else { return Ok(None) };
    let (len, row_len): (usize, usize) = (shape.iter().product(), shape[start..].iter().product());
    // LayerNorm's scale and bias must hold a whole row (the kernel does not broadcast them).
    for i in 1..node.inputs.len().min(3) {
        if node.inputs[i].is_some() && bound_shape(g, node, i, dims).is_none_or(|s| s.iter().product::<usize>() != row_len) {
            return Ok(None);
        }
    }
    if len == 0 || row_len == 0 {
        return Ok(Some(Lowered { kernel: KERNEL, variant: "default".into() }));
    }
    let cands = row_candidates(len, crate::device::cores());
    let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
    let x = filler(len);
    let mut out = vec![0f32; len];
    let problem = format!("{}:rows={},len={row_len}", node.op_type, len / row_len);
    let variant = tune(tuner, KERNEL, problem, &names, |i| match op {
        Op::Softmax => softmax(&x, row_len, &mut out, &cands[i]).map_err(|e| e.to_string()),
        Op::LayerNorm { eps } => layer_norm(&x, row_len, None, None, eps, &mut out, &cands[i]).map_err(|e| e.to_string()),
    })?;
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

pub struct RowsStep {
    op: Op,
    axis: Option<i64>,
    opset: i64,
}

impl RowsStep {
    pub fn load(step: &Step) -> Result<RowsStep, String> {
        let op = op_of(&step.op, step_float(step, "epsilon")).ok_or_else(|| format!("{} is not a row op", step.op))?;
        Ok(RowsStep { op, axis: step_int(step, "axis"), opset: step.opset })
    }

    /// The output comes from `pool`: softmax and LayerNorm write every element of a row.
    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, pool: &mut crate::exec::Pool) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let start = row_start(self.op, self.axis, self.opset, x.rank())
            .ok_or_else(|| format!("axis {:?} does not fit shape {:?}", self.axis, x.shape()))?;
        let row_len: usize = x.shape()[start..].iter().product();
        let xs = x.as_slice::<f32>().map_err(|e| e.to_string())?;
        let mut out = pool.take(xs.len());
        if xs.is_empty() || row_len == 0 {
            return Tensor::from_vec(x.shape().to_vec(), out).map_err(|e| e.to_string());
        }
        let params: RowParams = pick(&row_candidates(xs.len(), crate::device::cores()), variant).ok_or("no row candidate")?;
        match self.op {
            Op::Softmax => softmax(xs, row_len, &mut out, &params),
            Op::LayerNorm { eps } => {
                let operand = |i: usize, what: &str| -> Result<Option<&[f32]>, String> {
                    match inputs.get(i).copied().flatten() {
                        None => Ok(None),
                        Some(t) if t.len() == row_len => t.as_slice::<f32>().map(Some).map_err(|e| e.to_string()),
                        Some(t) => Err(format!("{what} has shape {:?}; this kernel needs the {row_len} values of a row", t.shape())),
                    }
                };
                layer_norm(xs, row_len, operand(1, "scale")?, operand(2, "bias")?, eps, &mut out, &params)
            }
        }
        .map_err(|e| e.to_string())?;
        Tensor::from_vec(x.shape().to_vec(), out).map_err(|e| e.to_string())
    }
}
