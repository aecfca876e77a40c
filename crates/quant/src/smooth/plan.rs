//! Which activations are smoothed, which constants absorb `s` and `1/s`, and what is skipped.

use super::SmoothOptions;
use crate::{Observation, QuantOptions};
use kiln_ir::{Graph, Model, Node, NodeId, ValueId};
use kiln_tensor::DType;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// How the producer of a group's activation absorbs `1/s`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fold {
    /// `LayerNormalization`: its constant scale and bias divided by `s`.
    LayerNorm { node: String },
    /// `Mul(y, gamma)`, optionally `-> Add(., beta)`, constants: gamma (and beta) divided by `s`.
    Affine { mul: String, add: Option<String> },
    /// `MatMul` / `Gemm` with constant weights, optionally `-> Add(., bias)`: the output columns
    /// (Gemm's C, the bias) divided by `s`.
    Linear { node: String, bias: Option<String> },
    /// Nothing absorbs it: `Mul(x, 1/s)` inserted before the consumers (`insert_mul`).
    InsertMul { reason: String },
}

impl std::fmt::Display for Fold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fold::LayerNorm { node } => write!(f, "LayerNormalization {node}"),
            Fold::Affine { mul, add: Some(add) } => write!(f, "Mul {mul} + Add {add}"),
            Fold::Affine { mul, add: None } => write!(f, "Mul {mul}"),
            Fold::Linear { node, bias: Some(b) } => write!(f, "linear {node} + Add {b}"),
            Fold::Linear { node, bias: None } => write!(f, "linear {node}"),
            Fold::InsertMul { .. } => f.write_str("inserted Mul"),
        }
    }
}

/// The axis of a constant along which the `K` channels run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Axis {
    /// The last axis, by broadcasting: a last dim of 1 (or a scalar) is expanded to `K`.
    Last,
    /// This axis of a 2-D weight.
    Of2d(usize),
}

/// One constant input of one node that is scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ConstRef {
    pub node: NodeId,
    pub input: usize,
    pub axis: Axis,
}

/// One activation smoothed by one `s`.
#[derive(Clone, Debug, PartialEq)]
pub struct SmoothGroup {
    /// The activation's value name.
    pub activation: String,
    /// `K`, the number of channels (its last axis).
    pub channels: usize,
    /// The MatMul / Gemm nodes reading it (their weights' rows multiplied by `s`).
    pub consumers: Vec<String>,
    pub fold: Fold,
    /// Consumer weights (multiplied by `s`) and producer constants (divided by `s`).
    pub(crate) multiply: Vec<ConstRef>,
    pub(crate) divide: Vec<ConstRef>,
    /// The activation and the consumer nodes (rewired to the inserted Mul with `insert_mul`).
    pub(crate) value: ValueId,
    pub(crate) consumer_nodes: Vec<NodeId>,
}

/// What [`plan_smoothing`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SmoothPlan {
    pub groups: Vec<SmoothGroup>,
    /// MatMul / Gemm nodes left alone, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl SmoothPlan {
    /// The activations whose per-channel `max|x|` [`super::smooth`] needs.
    pub fn observation(&self) -> Observation {
        Observation { values: self.groups.iter().map(|g| g.activation.clone()).collect(), excluded: Vec::new() }
    }
}

fn is_const(g: &Graph, v: ValueId) -> bool {
    g.initializers.contains_key(&v) && !g.inputs.contains(&v)
}

/// A constant f32 initializer.
fn const_f32(g: &Graph, v: Option<ValueId>) -> Option<&kiln_tensor::Tensor> {
    let v = v?;
    g.initializers.get(&v).filter(|t| is_const(g, v) && t.dtype() == DType::F32)
}

/// Broadcasts over the last axis of a `K`-channel value: a scalar or a last dim of 1 or K.
fn last_axis_ok(t: &kiln_tensor::Tensor, k: usize) -> bool {
    t.shape().last().is_none_or(|&d| d == 1 || d == k)
}

/// An eligible consumer: (node, weight axis of K, K).
type Eligible = (NodeId, usize, usize);

/// The eligible consumers by activation, in first-use order: the MatMul / Gemm nodes that
/// `quantize` takes (`crate::select`, same exclusions), less Gemm with transA. The others go
/// to `skipped` with the reason.
fn consumers(model: &Model, opts: &SmoothOptions, skipped: &mut Vec<(String, String)>) -> Vec<(ValueId, Vec<Eligible>)> {
    let qopts =
        QuantOptions { exclude_nodes: opts.exclude_nodes.clone(), exclude_ops: opts.exclude_ops.clone(), ..QuantOptions::default() };
    let sel = crate::select::select(model, &qopts);
    skipped.extend(sel.excluded.into_iter().filter(|e| e.op != "Conv").map(|e| (e.node, e.reason)));
    let g = &model.graph;
    let mut by_x: Vec<(ValueId, Vec<Eligible>)> = Vec::new();
    for c in sel.candidates {
        let n = &g.nodes[c.node.0];
        if n.op_type == "Conv" {
            continue;
        }
        if n.attr_int("transA").unwrap_or(0) != 0 {
            skipped.push((n.label(), "Gemm transA=1: the activation's channels are not its last axis".into()));
            continue;
        }
        // select takes 2-D MatMul / Gemm weights only; `c.axis` is the output channels' axis.
        let axis = 1 - c.axis.min(1);
        let Some(&k) = g.initializers.get(&c.weight).and_then(|w| w.shape().get(axis)).filter(|&&k| k > 0) else { continue };
        match by_x.iter_mut().find(|(v, _)| *v == c.activation) {
            Some((_, list)) => list.push((c.node, axis, k)),
            None => by_x.push((c.activation, vec![(c.node, axis, k)])),
        }
    }
    by_x
}

/// Who reads each value: main-graph nodes, and whether a subgraph or a graph output does.
struct Readers {
    nodes: HashMap<ValueId, Vec<NodeId>>,
    elsewhere: HashSet<ValueId>,
}

impl Readers {
    fn of(g: &Graph) -> Readers {
        let mut nodes: HashMap<ValueId, Vec<NodeId>> = HashMap::new();
        let mut elsewhere: HashSet<ValueId> = g.outputs.iter().copied().collect();
        for (i, n) in g.nodes.iter().enumerate() {
            for v in n.inputs.iter().flatten() {
                let list = nodes.entry(*v).or_default();
                if !list.contains(&NodeId(i)) {
                    list.push(NodeId(i));
                }
            }
            for name in kiln_ir::subgraph_reads(n) {
                elsewhere.extend(g.value_by_name(&name));
            }
        }
        Readers { nodes, elsewhere }
    }

    /// The value's only reader, when it has exactly one and no output or subgraph reads it.
    fn only(&self, v: ValueId) -> Option<NodeId> {
        match self.nodes.get(&v).map(Vec::as_slice) {
            Some([one]) if !self.elsewhere.contains(&v) => Some(*one),
            _ => None,
        }
    }
}

struct Cx<'a> {
    g: &'a Graph,
    readers: &'a Readers,
    producers: &'a HashMap<ValueId, NodeId>,
}

impl Cx<'_> {
    fn name(&self, v: ValueId) -> &str {
        &self.g.value(v).name
    }

    /// `(input index of the constant operand, the other operand)` when node `id` is binary with
    /// one constant f32 operand and one activation. The constant must broadcast over the last
    /// axis; `per_channel` asks for K values there already (a Mul's gamma: a scalar such as
    /// GELU's 0.5 is left alone, since expanding it would hide the pattern from fusion).
    fn const_operand(&self, id: NodeId, k: usize, per_channel: bool) -> Option<(usize, ValueId)> {
        let n = &self.g.nodes[id.0];
        let (a, b) = (n.inputs.first().copied().flatten()?, n.inputs.get(1).copied().flatten()?);
        let ok =
            |v| const_f32(self.g, Some(v)).is_some_and(|t| if per_channel { t.shape().last() == Some(&k) } else { last_axis_ok(t, k) });
        match (ok(a), ok(b)) {
            (false, true) if !is_const(self.g, a) => Some((1, a)),
            (true, false) if !is_const(self.g, b) => Some((0, b)),
            _ => None,
        }
    }

    /// How `x`'s producer absorbs `1/s`, and the constants it divides.
    fn fold(&self, x: ValueId, k: usize) -> Result<(Fold, Vec<ConstRef>), String> {
        let Some(&p) = self.producers.get(&x) else {
            return Err(format!("'{}' is a graph input: nothing before it can absorb 1/s", self.name(x)));
        };
        let n = &self.g.nodes[p.0];
        let cannot = |n: &Node| format!("'{}' comes from {} ({}), which cannot absorb 1/s", self.name(x), n.label(), n.qualified_op());
        if !n.domain.is_empty() || n.unsupported.is_some() || n.outputs.first().copied().flatten() != Some(x) {
            return Err(cannot(n));
        }
        let r = |node, input, axis| ConstRef { node, input, axis };
        match n.op_type.as_str() {
            "LayerNormalization" => {
                let scale = const_f32(self.g, n.inputs.get(1).copied().flatten());
                let bias = n.inputs.get(2).copied().flatten();
                if !scale.is_some_and(|t| last_axis_ok(t, k)) {
                    return Err(format!("LayerNormalization {} has no constant f32 scale over the last axis", n.label()));
                }
                let mut refs = vec![r(p, 1, Axis::Last)];
                if bias.is_some() {
                    if !const_f32(self.g, bias).is_some_and(|t| last_axis_ok(t, k)) {
                        return Err(format!("LayerNormalization {} has a bias that is not a constant over the last axis", n.label()));
                    }
                    refs.push(r(p, 2, Axis::Last));
                }
                Ok((Fold::LayerNorm { node: n.label() }, refs))
            }
            "Mul" => {
                let (c, _) = self.const_operand(p, k, true).ok_or_else(|| match self.const_operand(p, k, false) {
                    Some(_) => format!(
                        "'{}' comes from Mul {} by a constant without {k} channels (as GELU's 0.5): expanding it would hide the pattern from fusion",
                        self.name(x),
                        n.label()
                    ),
                    None => cannot(n),
                })?;
                Ok((Fold::Affine { mul: n.label(), add: None }, vec![r(p, c, Axis::Last)]))
            }
            "Add" => {
                let (c, h) = self.const_operand(p, k, false).ok_or_else(|| cannot(n))?;
                let Some(&q) = self.producers.get(&h).filter(|_| self.readers.only(h) == Some(p)) else {
                    return Err(format!(
                        "'{}' is Add({}, constant) and {} is not a Mul or linear read only there",
                        self.name(x),
                        self.name(h),
                        self.name(h)
                    ));
                };
                let (fold, mut refs) = self.inner(q, h, k).map_err(|_| cannot(&self.g.nodes[q.0]))?;
                refs.push(r(p, c, Axis::Last));
                let fold = match fold {
                    Fold::Affine { mul, .. } => Fold::Affine { mul, add: Some(n.label()) },
                    Fold::Linear { node, .. } => Fold::Linear { node, bias: Some(n.label()) },
                    other => other,
                };
                Ok((fold, refs))
            }
            "MatMul" | "Gemm" => self.inner(p, x, k).map_err(|_| cannot(n)),
            _ => Err(cannot(n)),
        }
    }

    /// A Mul with a constant, or a MatMul / Gemm with constant weights, producing `y`.
    fn inner(&self, p: NodeId, y: ValueId, k: usize) -> Result<(Fold, Vec<ConstRef>), ()> {
        let n = &self.g.nodes[p.0];
        if !n.domain.is_empty() || n.unsupported.is_some() || n.outputs.first().copied().flatten() != Some(y) {
            return Err(());
        }
        let r = |node, input, axis| ConstRef { node, input, axis };
        let w = const_f32(self.g, n.inputs.get(1).copied().flatten());
        match n.op_type.as_str() {
            "Mul" => {
                let (c, _) = self.const_operand(p, k, true).ok_or(())?;
                Ok((Fold::Affine { mul: n.label(), add: None }, vec![r(p, c, Axis::Last)]))
            }
            "MatMul" => {
                w.filter(|w| w.rank() == 2 && w.shape()[1] == k).ok_or(())?;
                Ok((Fold::Linear { node: n.label(), bias: None }, vec![r(p, 1, Axis::Of2d(1))]))
            }
            "Gemm" => {
                let axis = if n.attr_int("transB").unwrap_or(0) != 0 { 0 } else { 1 };
                w.filter(|w| w.rank() == 2 && w.shape()[axis] == k).ok_or(())?;
                let mut refs = vec![r(p, 1, Axis::Of2d(axis))];
                if let Some(c) = n.inputs.get(2).copied().flatten() {
                    const_f32(self.g, Some(c)).filter(|t| last_axis_ok(t, k)).ok_or(())?;
                    refs.push(r(p, 2, Axis::Last));
                }
                Ok((Fold::Linear { node: n.label(), bias: None }, refs))
            }
            _ => Err(()),
        }
    }
}

/// The smoothing groups of `model` under `opts`, and the MatMul / Gemm nodes left alone.
pub fn plan_smoothing(model: &Model, opts: &SmoothOptions) -> SmoothPlan {
    let g = &model.graph;
    let mut plan = SmoothPlan::default();
    let by_x = consumers(model, opts, &mut plan.skipped);
    let readers = Readers::of(g);
    let producers = g.producers();
    let cx = Cx { g, readers: &readers, producers: &producers };
    for (x, list) in by_x {
        let labels: Vec<String> = list.iter().map(|(c, ..)| g.nodes[c.0].label()).collect();
        let mut skip = |reason: String| plan.skipped.extend(labels.iter().map(|l| (l.clone(), reason.clone())));
        let k = list[0].2;
        if list.iter().any(|c| c.2 != k) {
            skip(format!("the readers of '{}' disagree on its channel count", cx.name(x)));
            continue;
        }
        let mine: Vec<NodeId> = list.iter().map(|c| c.0).collect();
        let other = readers.nodes.get(&x).into_iter().flatten().find(|r| !mine.contains(r));
        let shared = match other {
            Some(o) => {
                let o = &g.nodes[o.0];
                Some(format!("'{}' is also read by {} ({})", cx.name(x), o.label(), o.qualified_op()))
            }
            None if readers.elsewhere.contains(&x) => Some(format!("'{}' is also a graph output or read by a subgraph", cx.name(x))),
            None => None,
        };
        let folded = match shared {
            Some(reason) => Err(reason),
            None => cx.fold(x, k),
        };
        let (fold, divide) = match folded {
            Ok(f) => f,
            Err(reason) if opts.insert_mul => (Fold::InsertMul { reason }, Vec::new()),
            Err(reason) => {
                skip(reason);
                continue;
            }
        };
        plan.groups.push(SmoothGroup {
            activation: cx.name(x).to_string(),
            channels: k,
            consumers: labels,
            fold,
            multiply: list.iter().map(|&(node, axis, _)| ConstRef { node, input: 1, axis: Axis::Of2d(axis) }).collect(),
            divide,
            value: x,
            consumer_nodes: mine,
        });
    }
    plan
}
