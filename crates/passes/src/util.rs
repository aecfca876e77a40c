//! Graph queries shared by the passes: who produces and who reads a value, constants,
//! facts, fresh names, and building nodes.

use kiln_ir::{Attr, Graph, Node, NodeId, ValueId};
use kiln_tensor::{Shape, Tensor};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A graph with its producer and reader tables, built once per pass run.
pub struct View<'g> {
    pub g: &'g Graph,
    producers: HashMap<ValueId, NodeId>,
    readers: HashMap<ValueId, Vec<(NodeId, usize)>>,
    /// Values read outside node inputs: graph outputs and subgraph captures (by name).
    pinned: HashSet<ValueId>,
}

impl<'g> View<'g> {
    pub fn new(g: &'g Graph) -> View<'g> {
        let mut readers: HashMap<ValueId, Vec<(NodeId, usize)>> = HashMap::new();
        let mut pinned: HashSet<ValueId> = g.outputs.iter().copied().collect();
        for (i, n) in g.nodes.iter().enumerate() {
            for (k, v) in n.inputs.iter().enumerate() {
                if let Some(v) = v {
                    readers.entry(*v).or_default().push((NodeId(i), k));
                }
            }
            for name in kiln_ir::subgraph_reads(n) {
                if let Some(v) = g.value_by_name(&name) {
                    pinned.insert(v);
                }
            }
        }
        View { g, producers: g.producers(), readers, pinned }
    }

    pub fn node(&self, n: NodeId) -> &'g Node {
        &self.g.nodes[n.0]
    }

    /// The node that defines `v`, if a node does.
    pub fn producer(&self, v: ValueId) -> Option<(NodeId, &'g Node)> {
        self.producers.get(&v).map(|&n| (n, &self.g.nodes[n.0]))
    }

    /// The producer of `v` when it is the ai.onnx op `op` (supported by the importer).
    pub fn producer_op(&self, v: ValueId, op: &str) -> Option<(NodeId, &'g Node)> {
        self.producer(v).filter(|(_, n)| is_op(n, op))
    }

    /// Node inputs reading `v`.
    pub fn readers(&self, v: ValueId) -> &[(NodeId, usize)] {
        self.readers.get(&v).map_or(&[], Vec::as_slice)
    }

    /// Whether `v` is a graph output or read by a subgraph.
    pub fn pinned(&self, v: ValueId) -> bool {
        self.pinned.contains(&v)
    }

    /// The one node reading `v` when `v` has exactly one use (one input slot of one node, and
    /// it is no graph output nor captured by a subgraph): `v` may vanish in a fusion.
    pub fn sole_reader(&self, v: ValueId) -> Option<(NodeId, &'g Node)> {
        match self.readers(v) {
            [(n, _)] if !self.pinned(v) => Some((*n, &self.g.nodes[n.0])),
            _ => None,
        }
    }

    /// The constant held by `v`: an initializer that is not an (overridable) graph input.
    pub fn constant(&self, v: ValueId) -> Option<&'g Tensor> {
        constant(self.g, v)
    }

    /// A constant's single value (any shape of one element, or every element equal), as f64.
    pub fn scalar(&self, v: ValueId) -> Option<f64> {
        let t = self.constant(v)?;
        let vals = t.to_f64_vec().ok()?;
        let first = *vals.first()?;
        vals.iter().all(|&x| x == first || (x.is_nan() && first.is_nan())).then_some(first)
    }

    pub fn shape(&self, v: ValueId) -> Option<&'g Shape> {
        self.g.value(v).shape.as_ref()
    }

    pub fn rank(&self, v: ValueId) -> Option<usize> {
        self.shape(v).map(Shape::rank)
    }
}

/// The constant held by `v`: an initializer that is not an (overridable) graph input.
pub fn constant(g: &Graph, v: ValueId) -> Option<&Tensor> {
    if g.inputs.contains(&v) { None } else { g.initializers.get(&v) }
}

/// Whether `n` is the ai.onnx op `op` and supported by the importer's op set.
pub fn is_op(n: &Node, op: &str) -> bool {
    n.op_type == op && (n.domain.is_empty() || n.domain == "ai.onnx") && n.unsupported.is_none()
}

/// Input `i` of `n`, when present.
pub fn input(n: &Node, i: usize) -> Option<ValueId> {
    n.inputs.get(i).copied().flatten()
}

/// Output `i` of `n`, when present.
pub fn output(n: &Node, i: usize) -> Option<ValueId> {
    n.outputs.get(i).copied().flatten()
}

/// Outputs of `n` after the first that something reads: none for a node reducible to its
/// first output.
pub fn extra_outputs_used(view: &View, n: &Node) -> bool {
    n.outputs.iter().skip(1).flatten().any(|&v| !view.readers(v).is_empty() || view.pinned(v))
}

/// For a binary op node, the (other input, constant) pair when one side is a constant.
pub fn split_const<'g>(view: &View<'g>, n: &Node) -> Option<(ValueId, ValueId, usize)> {
    let (a, b) = (input(n, 0)?, input(n, 1)?);
    if view.constant(b).is_some() {
        Some((a, b, 1))
    } else if view.constant(a).is_some() {
        Some((b, a, 0))
    } else {
        None
    }
}

/// Value names in use, to make new ones unique.
pub struct Names(HashSet<String>);

impl Names {
    pub fn of(g: &Graph) -> Names {
        Names(g.values.iter().map(|v| v.name.clone()).collect())
    }

    /// `base`, or `base_2`, `base_3`, ... whichever is free; reserved from now on.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 2;
        while self.0.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// A new node in `domain` (`""` for ai.onnx).
pub fn make_node(
    name: &str,
    domain: &str,
    op: &str,
    opset: i64,
    inputs: Vec<Option<ValueId>>,
    outputs: Vec<Option<ValueId>>,
    attrs: BTreeMap<String, Attr>,
) -> Node {
    Node { name: name.to_string(), op_type: op.to_string(), domain: domain.to_string(), opset, inputs, outputs, attrs, unsupported: None }
}

/// The ai.onnx opset a node of `op` written by a pass uses: the graph's own (as seen on the
/// node it replaces) or the op's first version, whichever is newer.
pub fn onnx_opset(replaced: &Node, first_version: i64) -> i64 {
    let own = if replaced.domain.is_empty() { replaced.opset } else { 0 };
    own.max(first_version)
}

/// A name for a node derived from `n`: `n`'s name plus `suffix`, or empty when `n` has none.
pub fn derived_name(n: &Node, suffix: &str) -> String {
    if n.name.is_empty() { String::new() } else { format!("{}{suffix}", n.name) }
}

pub fn string_attr(s: &str) -> Attr {
    Attr::String(s.as_bytes().to_vec())
}

/// The axes of a Reduce*/Squeeze/Unsqueeze node: the `axes` attribute (older opsets) or the
/// constant second input (newer ones). `Some(vec![])` when none is given.
pub fn axes_of(view: &View, n: &Node) -> Option<Vec<i64>> {
    if let Some(a) = n.attr_ints("axes") {
        return Some(a.to_vec());
    }
    match input(n, 1) {
        Some(v) => view.constant(v)?.to_i64_vec().ok(),
        None => Some(vec![]),
    }
}

/// Whether a float close to `want` (relative 1e-4): how exporters write 0.5, sqrt(2), ...
pub fn near(x: f64, want: f64) -> bool {
    (x - want).abs() <= 1e-4 * want.abs().max(1e-12)
}

/// A patch description from what a pass did: the first three items and how many more.
pub fn describe(what: &str, done: &[String]) -> String {
    let more = if done.len() > 3 { format!(" and {} more", done.len() - 3) } else { String::new() };
    format!("{what}{}{more}", done.iter().take(3).cloned().collect::<Vec<_>>().join(", "))
}
