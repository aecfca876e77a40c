//! Raising a model's ai.onnx opset: to 13 for per-axis DequantizeLinear, to 21 for blocked
//! DequantizeLinear and the 4-bit types.
//!
//! Relabelling the opset is only right when no node changes meaning on the way. [`CHANGES`]
//! lists the ai.onnx ops whose meaning (not merely their type list or a new attribute with the
//! old behaviour as default) changed at an opset; each is rewritten to the new form where that
//! is mechanical (an attribute that became an input, a default that changed, renamed enum
//! values) and refused otherwise. Ops checked and left out because their old meaning holds at
//! 21: BatchNormalization 14/15 (training outputs), Reshape 14 (`allowzero` default 0),
//! Shape 15 (`start`/`end`), ScatterND/ScatterElements 16/18 (`reduction` default none),
//! Resize 18/19 (new attributes default to the old behaviour), Pad 18/19 (optional `axes`),
//! LpPool 18 and AveragePool 19 (new attributes), Cast 19 (`saturate`: float8 only),
//! QuantizeLinear/DequantizeLinear 19/21 (new types, `block_size`, `output_dtype`),
//! RNN/GRU/LSTM 14 (`layout` default 0), and the type-only revisions of 14..21.
//!
//! Every ai.onnx node (subgraphs included) is relabelled to the new opset, since kernels read
//! the node's opset for the old semantics.

use crate::QuantError;
use crate::graph_edit::fresh;
use kiln_ir::{Attr, Graph, Model, Node};
use kiln_tensor::{Data, Shape, Tensor, TensorError};
use std::collections::HashSet;

/// What changed in an op at an opset, and what raising past it does.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Refused: the model must be converted by a tool that knows the op.
    Refuse(&'static str),
    /// An ints attribute became the (optional) int64 input at this index.
    AttrToInput(&'static str, usize),
    /// Split 18: without a `split` input, the part count must be given as `num_outputs`.
    SplitNumOutputs,
    /// A string attribute whose default changed: the old default is written out.
    OldDefault(&'static str, &'static str),
    /// GridSample 20: `mode` values renamed.
    GridSampleModes,
}

/// ai.onnx ops whose meaning changed at the given opset.
const CHANGES: &[(&str, i64, Change)] = &[
    ("Slice", 10, Change::Refuse("starts/ends/axes became inputs")),
    ("TopK", 10, Change::Refuse("k became an input")),
    ("Upsample", 10, Change::Refuse("deprecated for Resize")),
    ("Clip", 11, Change::Refuse("min/max became inputs")),
    ("Pad", 11, Change::Refuse("pads became an input")),
    ("Resize", 11, Change::Refuse("coordinate modes added, scales moved")),
    ("Dropout", 12, Change::Refuse("ratio became an input")),
    ("Softmax", 13, Change::Refuse("the axis now names one dimension instead of flattening")),
    ("LogSoftmax", 13, Change::Refuse("the axis now names one dimension instead of flattening")),
    ("Hardmax", 13, Change::Refuse("the axis now names one dimension instead of flattening")),
    ("Split", 13, Change::AttrToInput("split", 1)),
    ("Squeeze", 13, Change::AttrToInput("axes", 1)),
    ("Unsqueeze", 13, Change::AttrToInput("axes", 1)),
    ("ReduceSum", 13, Change::AttrToInput("axes", 1)),
    ("RoiAlign", 16, Change::OldDefault("coordinate_transformation_mode", "output_half_pixel")),
    ("ReduceL1", 18, Change::AttrToInput("axes", 1)),
    ("ReduceL2", 18, Change::AttrToInput("axes", 1)),
    ("ReduceLogSum", 18, Change::AttrToInput("axes", 1)),
    ("ReduceLogSumExp", 18, Change::AttrToInput("axes", 1)),
    ("ReduceMax", 18, Change::AttrToInput("axes", 1)),
    ("ReduceMean", 18, Change::AttrToInput("axes", 1)),
    ("ReduceMin", 18, Change::AttrToInput("axes", 1)),
    ("ReduceProd", 18, Change::AttrToInput("axes", 1)),
    ("ReduceSumSquare", 18, Change::AttrToInput("axes", 1)),
    ("Split", 18, Change::SplitNumOutputs),
    ("DFT", 20, Change::Refuse("axis and dft_length became inputs with new defaults")),
    ("GridSample", 20, Change::GridSampleModes),
    ("GroupNormalization", 21, Change::Refuse("scale and bias became per channel instead of per group")),
];

/// The model's ai.onnx opset (`min` when it declares none).
pub(crate) fn model_opset(model: &Model, min: i64) -> i64 {
    model.opsets.get("").or_else(|| model.opsets.get("ai.onnx")).copied().unwrap_or(min)
}

/// Raises the ai.onnx opset to `min` when it is lower: rewrites the nodes whose meaning changed
/// mechanically, refuses the others (naming the node), relabels every ai.onnx node. Returns
/// (from, to).
pub(crate) fn raise_opset(model: &mut Model, min: i64, why: &str) -> Result<(i64, i64), QuantError> {
    let from = model_opset(model, min);
    if from >= min {
        model.opsets.remove("ai.onnx");
        model.opsets.insert(String::new(), from);
        return Ok((from, from));
    }
    for n in model.all_nodes() {
        for (op, at, change) in changes(n, from, min) {
            if let Change::Refuse(reason) = change {
                return Err(QuantError::OpsetRaise {
                    why: why.to_string(),
                    node: n.label(),
                    op: op.to_string(),
                    opset: n.opset.min(from),
                    to: min,
                    reason: format!("{reason} at opset {at}"),
                });
            }
        }
    }
    let mut names = HashSet::new();
    all_names(&model.graph, &mut names);
    rewrite_graph(&mut model.graph, from, min, &mut names)
        .map_err(|e| QuantError::Weight { name: "opset rewrite".into(), message: e.to_string() })?;
    model.opsets.remove("ai.onnx");
    model.opsets.insert(String::new(), min);
    Ok((from, min))
}

fn is_default_domain(n: &Node) -> bool {
    n.domain.is_empty() || n.domain == "ai.onnx"
}

/// The changes a node crosses going from its opset to `to`.
fn changes(n: &Node, from: i64, to: i64) -> Vec<(&'static str, i64, Change)> {
    if !is_default_domain(n) {
        return Vec::new();
    }
    let at_least = n.opset.min(from);
    CHANGES.iter().filter(|(op, at, _)| *op == n.op_type && at_least < *at && *at <= to).copied().collect()
}

fn all_names(g: &Graph, out: &mut HashSet<String>) {
    out.extend(g.values.iter().map(|v| v.name.clone()));
    for n in &g.nodes {
        for a in n.attrs.values() {
            match a {
                Attr::Graph(sub) => all_names(sub, out),
                Attr::Graphs(subs) => subs.iter().for_each(|s| all_names(s, out)),
                _ => {}
            }
        }
    }
}

fn rewrite_graph(g: &mut Graph, from: i64, to: i64, names: &mut HashSet<String>) -> Result<(), TensorError> {
    for i in 0..g.nodes.len() {
        for (_, _, change) in changes(&g.nodes[i], from, to) {
            apply(g, i, change, names)?;
        }
        let n = &mut g.nodes[i];
        if is_default_domain(n) {
            n.opset = to;
        }
        for a in n.attrs.values_mut() {
            match a {
                Attr::Graph(sub) => rewrite_graph(sub, from, to, names)?,
                Attr::Graphs(subs) => {
                    for s in subs {
                        rewrite_graph(s, from, to, names)?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn apply(g: &mut Graph, i: usize, change: Change, names: &mut HashSet<String>) -> Result<(), TensorError> {
    match change {
        Change::Refuse(_) => {}
        Change::AttrToInput(attr, index) => {
            let Some(Attr::Ints(v)) = g.nodes[i].attrs.remove(attr) else {
                return Ok(());
            };
            let name = fresh(names, format!("{}_{attr}", g.nodes[i].label()));
            let t = Tensor::new(vec![v.len()], Data::I64(v))?;
            let id = g.add_value(name, Some(t.dtype()), Some(Shape::known(t.shape())));
            g.initializers.insert(id, t);
            let n = &mut g.nodes[i];
            if n.inputs.len() <= index {
                n.inputs.resize(index + 1, None);
            }
            n.inputs[index] = Some(id);
        }
        Change::SplitNumOutputs => {
            let n = &mut g.nodes[i];
            if n.inputs.get(1).copied().flatten().is_none() && !n.attrs.contains_key("num_outputs") {
                n.attrs.insert("num_outputs".into(), Attr::Int(n.outputs.len() as i64));
            }
        }
        Change::OldDefault(attr, old) => {
            g.nodes[i].attrs.entry(attr.into()).or_insert_with(|| Attr::String(old.as_bytes().to_vec()));
        }
        Change::GridSampleModes => {
            let n = &mut g.nodes[i];
            let renamed = match n.attr_str("mode") {
                None | Some("bilinear") => "linear",
                Some("bicubic") => "cubic",
                Some(_) => return Ok(()),
            };
            n.attrs.insert("mode".into(), Attr::String(renamed.as_bytes().to_vec()));
        }
    }
    Ok(())
}
