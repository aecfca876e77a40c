//! Constant folding: a node whose inputs are all constants (and which is deterministic and
//! has no subgraph) is run once with the reference kernel and replaced by initializers.
//! `Shape` and `Size` fold when their input's shape is fully known (their Gather/Slice/...
//! readers then fold in the next round). Outputs over [`MAX_FOLD_ELEMENTS`] stay computed
//! at run time.

use crate::util::{View, is_op};
use crate::{MAX_FOLD_ELEMENTS, Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Model, Node, NodeId};
use kiln_reference::Value;
use kiln_tensor::Tensor;
use std::collections::HashMap;

/// Ops whose outputs differ from run to run.
const NONDETERMINISTIC: &[&str] =
    &["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"];

/// Ops whose output may be much larger than their inputs: folded only when the output
/// shape is known beforehand (and within the limit).
const GROWING: &[&str] = &[
    "ConstantOfShape",
    "Expand",
    "Tile",
    "Range",
    "Resize",
    "Upsample",
    "Pad",
    "OneHot",
    "EyeLike",
    "MatMul",
    "Gemm",
    "Conv",
    "ConvTranspose",
    "Einsum",
];

/// When an output shape is unknown, inputs up to this many elements in all may be folded.
const UNKNOWN_SHAPE_INPUT_LIMIT: usize = 1 << 20;

pub struct FoldConstants;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut patch = GraphPatch::new(g, "");
        let mut folded: Vec<String> = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let Some(outputs) = fold_node(&view, n).map_err(|message| PassError::Node {
                pass: "fold-constants",
                node: n.label(),
                op: n.qualified_op(),
                message,
            })?
            else {
                continue;
            };
            for (slot, t) in n.outputs.iter().zip(outputs) {
                if let Some(v) = slot {
                    patch.set_initializer(*v, t);
                }
            }
            patch.remove_node(NodeId(i));
            folded.push(n.label());
        }
        if folded.is_empty() {
            return Ok(None);
        }
        let shown: Vec<&str> = folded.iter().take(4).map(String::as_str).collect();
        let more = if folded.len() > 4 { format!(" and {} more", folded.len() - 4) } else { String::new() };
        patch.description = format!("fold {} constant nodes: {}{more}", folded.len(), shown.join(", "));
        Ok(Some(patch))
    }
}

/// The outputs of `n` when it can be computed now; an error when its kernel fails.
fn fold_node(view: &View, n: &Node) -> Result<Option<Vec<Tensor>>, String> {
    let g = view.g;
    if n.unsupported.is_some()
        || n.outputs.iter().all(Option::is_none)
        || NONDETERMINISTIC.contains(&n.op_type.as_str())
        || n.attrs.values().any(|a| matches!(a, Attr::Graph(_) | Attr::Graphs(_)))
    {
        return Ok(None);
    }
    if is_op(n, "Shape") || is_op(n, "Size") {
        return Ok(fold_shape(view, n));
    }
    // Kernels over sequences and optionals do not make tensors.
    if !matches!(kiln_reference::registry().lookup(&n.domain, &n.op_type, n.opset), Some(kiln_reference::Kernel::Tensor(_))) {
        return Ok(None);
    }
    let mut inputs = Vec::with_capacity(n.inputs.len());
    for v in n.inputs.iter().flatten() {
        match view.constant(*v) {
            Some(t) => inputs.push(t),
            None => return Ok(None),
        }
    }
    // Check output sizes before computing anything.
    for o in n.outputs.iter().flatten() {
        match g.value(*o).shape.as_ref().and_then(|s| s.concrete()) {
            Some(dims) if dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).is_none_or(|e| e > MAX_FOLD_ELEMENTS) => {
                return Ok(None);
            }
            Some(_) => {}
            None => {
                let total: usize = inputs.iter().map(|t| t.len()).sum();
                if GROWING.contains(&n.op_type.as_str()) || total > UNKNOWN_SHAPE_INPUT_LIMIT {
                    return Ok(None);
                }
            }
        }
    }
    let outs = evaluate(g, n)?;
    if outs.iter().any(|t| t.len() > MAX_FOLD_ELEMENTS) {
        return Ok(None);
    }
    Ok(Some(outs))
}

fn fold_shape(view: &View, n: &Node) -> Option<Vec<Tensor>> {
    let x = n.inputs.first().copied().flatten()?;
    let dims = view.shape(x)?.concrete()?;
    if n.op_type == "Size" {
        let total = dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(i64::try_from(d).ok()?))?;
        return Some(vec![Tensor::scalar(total)]);
    }
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(n.attr_int("start").unwrap_or(0));
    let end = clamp(n.attr_int("end").unwrap_or(r)).max(start);
    let v: Vec<i64> = dims[start..end].iter().map(|&d| d as i64).collect();
    Tensor::from_vec(vec![v.len()], v).ok().map(|t| vec![t])
}

/// Runs `n` alone on its constant inputs with the reference executor.
fn evaluate(g: &Graph, n: &Node) -> Result<Vec<Tensor>, String> {
    let mut sub = Graph::new("fold");
    let mut ids = HashMap::new();
    let mut node = n.clone();
    for slot in node.inputs.iter_mut().flatten() {
        let id = *ids.entry(*slot).or_insert_with(|| {
            let id = sub.add_value(g.value(*slot).name.clone(), None, None);
            if let Some(t) = g.initializers.get(slot) {
                sub.initializers.insert(id, t.clone());
            }
            id
        });
        *slot = id;
    }
    for slot in node.outputs.iter_mut().flatten() {
        let id = sub.add_value(g.value(*slot).name.clone(), None, None);
        sub.outputs.push(id);
        *slot = id;
    }
    sub.nodes.push(node);
    let model = Model { graph: sub, ..Model::default() };
    let outs = kiln_reference::run(&model, vec![]).map_err(|e| match e {
        // The caller names the node already.
        kiln_reference::ExecError::Node { source, .. } => source.to_string(),
        other => other.to_string(),
    })?;
    outs.into_iter()
        .map(|(name, v)| match v {
            Value::Tensor(t) => Ok(t),
            other => Err(format!("output '{name}' is a {}, not a tensor", other.kind())),
        })
        .collect()
}
