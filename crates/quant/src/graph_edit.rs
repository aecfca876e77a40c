//! Small graph-editing helpers shared by the rewrites (int8 QDQ, weight-only).

use kiln_ir::{Attr, Graph, Model, Node, ValueId};
use kiln_tensor::{DType, Shape, Tensor};
use std::collections::{BTreeMap, HashSet};

/// The names taken in a model (values, nodes) and the opset new nodes get.
pub(crate) struct Names {
    values: HashSet<String>,
    nodes: HashSet<String>,
    opset: i64,
}

impl Names {
    pub fn new(model: &Model, opset: i64) -> Names {
        let values = model.graph.values.iter().map(|v| v.name.clone()).collect();
        let nodes = model.all_nodes().iter().map(|n| n.name.clone()).collect();
        Names { values, nodes, opset }
    }
}

/// Adding uniquely named values, constants and nodes to a graph being rewritten.
pub(crate) trait Emit {
    fn parts(&mut self) -> (&mut Graph, &mut Names);

    fn value(&mut self, base: String, dtype: DType, shape: Option<Shape>) -> ValueId {
        let (g, names) = self.parts();
        let name = fresh(&mut names.values, base);
        g.add_value(name, Some(dtype), shape)
    }

    fn constant(&mut self, base: String, t: Tensor) -> ValueId {
        let v = self.value(base, t.dtype(), Some(Shape::known(t.shape())));
        self.parts().0.initializers.insert(v, t);
        v
    }

    /// A node (not yet in the graph) named after `base`.
    fn node(&mut self, base: String, op: &str, inputs: &[ValueId], outputs: &[ValueId], attrs: Vec<(&str, Attr)>) -> Node {
        let (_, names) = self.parts();
        onnx_node(fresh(&mut names.nodes, base), op, names.opset, inputs, outputs, attrs)
    }
}

/// `base`, or `base_1`, `base_2`, ... : the first name not in `taken` (then taken).
pub(crate) fn fresh(taken: &mut HashSet<String>, base: String) -> String {
    let mut name = base.clone();
    let mut k = 1;
    while taken.contains(&name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    taken.insert(name.clone());
    name
}

/// An ai.onnx node at `opset` whose inputs and outputs are all present.
pub(crate) fn onnx_node(name: String, op: &str, opset: i64, inputs: &[ValueId], outputs: &[ValueId], attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        name,
        op_type: op.into(),
        domain: String::new(),
        opset,
        inputs: inputs.iter().map(|&v| Some(v)).collect(),
        outputs: outputs.iter().map(|&v| Some(v)).collect(),
        attrs: attrs.into_iter().map(|(k, a)| (k.to_string(), a)).collect(),
        unsupported: None,
    }
}

/// Puts `head` before every original node and `after[i]` right after original node `i`.
pub(crate) fn place(g: &mut Graph, head: Vec<Node>, mut after: BTreeMap<usize, Vec<Node>>) {
    let mut order = head;
    for (i, n) in std::mem::take(&mut g.nodes).into_iter().enumerate() {
        order.push(n);
        order.extend(after.remove(&i).unwrap_or_default());
    }
    g.nodes = order;
}

/// Removes the initializers among `weights` that no node, subgraph or output reads now.
pub(crate) fn drop_unread(g: &mut Graph, weights: impl IntoIterator<Item = ValueId>) {
    let mut read: HashSet<ValueId> = g.outputs.iter().copied().collect();
    for n in &g.nodes {
        read.extend(n.inputs.iter().flatten().copied());
        for name in kiln_ir::subgraph_reads(n) {
            read.extend(g.value_by_name(&name));
        }
    }
    for w in weights {
        if !read.contains(&w) && !g.inputs.contains(&w) {
            g.initializers.remove(&w);
        }
    }
}
