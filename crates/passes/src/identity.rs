//! Identity removal: ops that return their input unchanged are bypassed. Identity; Dropout
//! in inference (mask unused); Cast to the input's own type; Reshape / Expand to the input's
//! own shape; Transpose by the identity permutation; Add / Sub of 0 and Mul / Div by 1 where
//! broadcasting keeps the shape; a one-input Concat.
//!
//! A graph output is bypassed only when the value replacing it is neither a graph input nor
//! another output (the patch gives the replacement the output's name).

use crate::util::{View, extra_outputs_used, input, is_op, output};
use crate::{Pass, PassError};
use kiln_ir::{Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::DType;
use std::collections::HashMap;

pub struct RemoveIdentities;

impl Pass for RemoveIdentities {
    fn name(&self) -> &'static str {
        "remove-identities"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut patch = GraphPatch::new(g, "");
        let mut redirect: HashMap<ValueId, ValueId> = HashMap::new();
        let mut removed: Vec<String> = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let (Some(out), Some(src)) = (output(n, 0), identity_source(&view, n)) else { continue };
            let mut root = src;
            while let Some(&next) = redirect.get(&root) {
                root = next;
            }
            if g.outputs.contains(&out) && (g.inputs.contains(&root) || g.outputs.contains(&root)) {
                continue;
            }
            patch.replace_uses(out, src);
            patch.remove_node(NodeId(i));
            redirect.insert(out, src);
            removed.push(format!("{} '{}'", n.op_type, n.label()));
        }
        if removed.is_empty() {
            return Ok(None);
        }
        let shown: Vec<&str> = removed.iter().take(4).map(String::as_str).collect();
        let more = if removed.len() > 4 { format!(" and {} more", removed.len() - 4) } else { String::new() };
        patch.description = format!("bypass {} identity ops: {}{more}", removed.len(), shown.join(", "));
        Ok(Some(patch))
    }
}

/// The value `n` passes through unchanged, if it is an identity.
fn identity_source(view: &View, n: &Node) -> Option<ValueId> {
    if n.unsupported.is_some() || !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return None;
    }
    let x = input(n, 0)?;
    let out = output(n, 0)?;
    let same_facts = |a: ValueId, b: ValueId| {
        let (ia, ib) = (view.g.value(a), view.g.value(b));
        ia.dtype.is_some() && ia.dtype == ib.dtype && ia.shape.is_some() && ia.shape == ib.shape
    };
    let found = match n.op_type.as_str() {
        "Identity" => true,
        "Dropout" => {
            let training = match input(n, 2) {
                None => false,
                Some(t) => view.constant(t)?.to_f64_vec().ok()?.first().is_none_or(|&v| v != 0.0),
            };
            let old_training = n.opset < 7 && n.attr_int("is_test").unwrap_or(0) == 0;
            !training && !old_training && !extra_outputs_used(view, n)
        }
        "Cast" => {
            let to = n.attr_int("to").and_then(|c| DType::from_onnx(c as i32));
            to.is_some() && view.g.value(x).dtype == to
        }
        "Reshape" | "Expand" => same_facts(x, out),
        "Transpose" => match n.attr_ints("perm") {
            Some(p) => p.iter().enumerate().all(|(i, &a)| a == i as i64),
            None => view.rank(x).is_some_and(|r| r <= 1),
        },
        "Concat" => n.inputs.len() == 1,
        "Add" | "Sub" | "Mul" | "Div" => return neutral_operand(view, n, out),
        _ => false,
    };
    (found && is_op(n, &n.op_type)).then_some(x)
}

/// For x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1: x, when the result has x's type and shape.
fn neutral_operand(view: &View, n: &Node, out: ValueId) -> Option<ValueId> {
    let (a, b) = (input(n, 0)?, input(n, 1)?);
    let neutral = if matches!(n.op_type.as_str(), "Add" | "Sub") { 0.0 } else { 1.0 };
    let commutes = matches!(n.op_type.as_str(), "Add" | "Mul");
    let keeps = |x: ValueId| {
        let (ix, io) = (view.g.value(x), view.g.value(out));
        ix.dtype.is_some() && ix.dtype == io.dtype && ix.shape.as_ref().is_some_and(|s| Some(s) == io.shape.as_ref())
    };
    if view.scalar(b) == Some(neutral) && keeps(a) {
        return Some(a);
    }
    if commutes && view.scalar(a) == Some(neutral) && keeps(b) {
        return Some(b);
    }
    None
}
