//! Which nodes are quantized and which values are observed.
//!
//! Quantized: ai.onnx `MatMul` with a constant 2-D B, `Gemm` with a constant B (either
//! `transB`; `alpha` is folded into the int8 weights), `Conv` with a constant W (any group).
//! A constant is an initializer that is not also a graph input (an input can override it).
//! The observed values are those nodes' float activation inputs (input 0). Every other
//! MatMul / Gemm / Conv is listed as excluded, with the reason.

use crate::QuantOptions;
use crate::summary::Excluded;
use kiln_ir::{Graph, Model, Node, NodeId, ValueId};
use kiln_tensor::DType;

/// One node to quantize.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub node: NodeId,
    pub activation: ValueId,
    pub weight: ValueId,
    /// The weight axis of output channels (per-channel scales run along it).
    pub axis: usize,
    /// Gemm's `alpha`, folded into the weights (1 otherwise).
    pub alpha: f32,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Selection {
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
}

impl Selection {
    /// Activation values in first-use order, each once.
    pub fn observed(&self, g: &Graph) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.candidates {
            let name = &g.value(c.activation).name;
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }
}

pub(crate) fn select(model: &Model, opts: &QuantOptions) -> Selection {
    let g = &model.graph;
    let mut sel = Selection::default();
    for (i, n) in g.nodes.iter().enumerate() {
        if !n.domain.is_empty() || !matches!(n.op_type.as_str(), "MatMul" | "Gemm" | "Conv") {
            continue;
        }
        match candidate(g, n, opts) {
            Ok((activation, weight, axis, alpha)) => {
                sel.candidates.push(Candidate { node: NodeId(i), activation, weight, axis, alpha });
            }
            Err(reason) => sel.excluded.push(Excluded { node: n.label(), op: n.op_type.clone(), reason }),
        }
    }
    sel
}

fn candidate(g: &Graph, n: &Node, opts: &QuantOptions) -> Result<(ValueId, ValueId, usize, f32), String> {
    if !n.name.is_empty() && opts.exclude_nodes.contains(&n.name) {
        return Err("excluded by name".into());
    }
    if opts.exclude_ops.contains(&n.op_type) {
        return Err(format!("excluded by op ({})", n.op_type));
    }
    if n.unsupported.is_some() {
        return Err("not supported at this opset".into());
    }
    let input = |i: usize| n.inputs.get(i).copied().flatten();
    let (Some(x), Some(w)) = (input(0), input(1)) else {
        return Err("an input is missing".into());
    };
    let is_const = |v: ValueId| g.initializers.contains_key(&v) && !g.inputs.contains(&v);
    if is_const(x) {
        let why = if is_const(w) {
            "both inputs are constants (fold constants first)"
        } else {
            "input A is the constant; only a constant B is quantized"
        };
        return Err(why.into());
    }
    if let Some(d) = g.value(x).dtype
        && d != DType::F32
    {
        return Err(format!("the activation is {d}, only f32 is quantized"));
    }
    let Some(wt) = g.initializers.get(&w).filter(|_| is_const(w)) else {
        return Err("the weight is not a constant initializer".into());
    };
    if wt.dtype() != DType::F32 {
        return Err(format!("the weight is {}, only f32 is quantized", wt.dtype()));
    }
    let rank = wt.rank();
    let (axis, alpha) = match n.op_type.as_str() {
        "MatMul" if rank == 2 => (1, 1.0),
        "MatMul" => {
            return Err(format!("the weight is {rank}-D, only a 2-D MatMul B is quantized"));
        }
        "Gemm" if rank == 2 => (if n.attr_int("transB").unwrap_or(0) != 0 { 0 } else { 1 }, n.attr_float("alpha").unwrap_or(1.0)),
        "Gemm" => return Err(format!("the weight is {rank}-D, Gemm needs 2-D")),
        _ if rank >= 3 => (0, 1.0),
        _ => return Err(format!("the weight is {rank}-D, Conv needs at least 3-D")),
    };
    if !alpha.is_finite() {
        return Err(format!("alpha is {alpha}"));
    }
    if wt.shape()[axis] == 0 {
        return Err("the weight is empty".into());
    }
    Ok((x, w, axis, alpha))
}
