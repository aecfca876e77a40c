use crate::{Attr, IrError};
use kiln_tensor::{DType, Shape, Tensor};
use std::collections::{BTreeMap, HashMap};

/// The ONNX default domain (`ai.onnx`), spelt as ONNX files spell it.
pub const DEFAULT_DOMAIN: &str = "";

/// Index of a value in its graph's `values`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// Index of a node in its graph's `nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// A named, possibly typed value. `dtype`/`shape` are None until known.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: Option<DType>,
    pub shape: Option<Shape>,
}

/// One operation. Optional inputs or outputs that a model leaves out are `None`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    /// Operator domain; `""` is ai.onnx.
    pub domain: String,
    /// The version of `domain` the model was imported under (ops read it for old semantics).
    pub opset: i64,
    pub inputs: Vec<Option<ValueId>>,
    pub outputs: Vec<Option<ValueId>>,
    pub attrs: BTreeMap<String, Attr>,
    /// Set when the importer's registry does not know this op (or this opset of it):
    /// the node is kept so every unsupported op can be listed at once.
    pub unsupported: Option<String>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.get(name)
    }
    pub fn attr_int(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(Attr::as_int)
    }
    pub fn attr_float(&self, name: &str) -> Option<f32> {
        self.attrs.get(name).and_then(Attr::as_float)
    }
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        self.attrs.get(name).and_then(Attr::as_ints)
    }
    pub fn attr_floats(&self, name: &str) -> Option<&[f32]> {
        self.attrs.get(name).and_then(Attr::as_floats)
    }
    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Attr::as_str)
    }
    pub fn attr_tensor(&self, name: &str) -> Option<&Tensor> {
        self.attrs.get(name).and_then(Attr::as_tensor)
    }
    pub fn attr_graph(&self, name: &str) -> Option<&Graph> {
        self.attrs.get(name).and_then(Attr::as_graph)
    }
    /// A name for messages: the node's own name, or its op type when unnamed.
    pub fn label(&self) -> String {
        if self.name.is_empty() { self.op_type.clone() } else { self.name.clone() }
    }
    /// `domain::op_type`, or just `op_type` in the default domain.
    pub fn qualified_op(&self) -> String {
        if self.domain.is_empty() || self.domain == "ai.onnx" {
            self.op_type.clone()
        } else {
            format!("{}::{}", self.domain, self.op_type)
        }
    }
}

/// A dataflow graph. Values are defined by graph inputs, initializers or node outputs;
/// a subgraph may also read values of its enclosing graphs by name (see [`Graph::free_values`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    pub name: String,
    pub values: Vec<ValueInfo>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    /// Constant tensors; an initializer that is also an input is that input's default.
    pub initializers: BTreeMap<ValueId, Tensor>,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), ..Graph::default() }
    }

    pub fn add_value(&mut self, name: impl Into<String>, dtype: Option<DType>, shape: Option<Shape>) -> ValueId {
        self.values.push(ValueInfo { name: name.into(), dtype, shape });
        ValueId(self.values.len() - 1)
    }

    pub fn add_node(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        NodeId(self.nodes.len() - 1)
    }

    pub fn value(&self, id: ValueId) -> &ValueInfo {
        &self.values[id.0]
    }

    pub fn value_mut(&mut self, id: ValueId) -> &mut ValueInfo {
        &mut self.values[id.0]
    }

    pub fn value_by_name(&self, name: &str) -> Option<ValueId> {
        self.values.iter().position(|v| v.name == name).map(ValueId)
    }

    /// Graph inputs that have no initializer: what a caller must feed.
    pub fn runtime_inputs(&self) -> Vec<ValueId> {
        self.inputs.iter().copied().filter(|i| !self.initializers.contains_key(i)).collect()
    }

    /// Which node defines each value (graph inputs and initializers have none).
    pub fn producers(&self) -> HashMap<ValueId, NodeId> {
        let mut m = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for o in n.outputs.iter().flatten() {
                m.insert(*o, NodeId(i));
            }
        }
        m
    }

    /// Values this graph reads but does not define: they come from enclosing graphs.
    pub fn free_values(&self) -> Vec<ValueId> {
        let mut defined = vec![false; self.values.len()];
        for i in self.inputs.iter().chain(self.initializers.keys()) {
            defined[i.0] = true;
        }
        for n in &self.nodes {
            for o in n.outputs.iter().flatten() {
                defined[o.0] = true;
            }
        }
        let mut free = Vec::new();
        let mut seen = vec![false; self.values.len()];
        let reads = self.nodes.iter().flat_map(|n| n.inputs.iter().flatten()).chain(self.outputs.iter());
        for v in reads {
            if !defined[v.0] && !seen[v.0] {
                seen[v.0] = true;
                free.push(*v);
            }
        }
        free
    }

    /// Node order in which every node follows the nodes it reads from (Kahn's algorithm,
    /// stable: ties keep file order). Fails on a cycle, naming a node on it.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, IrError> {
        let producers = self.producers();
        let mut indegree = vec![0usize; self.nodes.len()];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let mut deps: Vec<usize> = n.inputs.iter().flatten().filter_map(|v| producers.get(v)).map(|p| p.0).collect();
            deps.extend(subgraph_reads(n).iter().filter_map(|name| self.value_by_name(name)).filter_map(|v| producers.get(&v)).map(|p| p.0));
            deps.sort_unstable();
            deps.dedup();
            indegree[i] = deps.len();
            for d in deps {
                users[d].push(i);
            }
        }
        let mut ready: std::collections::BTreeSet<usize> = (0..self.nodes.len()).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop_first() {
            order.push(NodeId(i));
            for &u in &users[i] {
                indegree[u] -= 1;
                if indegree[u] == 0 {
                    ready.insert(u);
                }
            }
        }
        if let Some(stuck) = (0..self.nodes.len()).find(|&i| indegree[i] > 0) {
            let n = &self.nodes[stuck];
            return Err(IrError::Cycle { node: n.label(), op: n.op_type.clone() });
        }
        Ok(order)
    }

    /// Number of elements held by initializers (the parameter count).
    pub fn parameter_count(&self) -> usize {
        self.initializers.values().map(Tensor::len).sum()
    }

    /// Bytes held by initializers at their stored precision.
    pub fn parameter_bytes(&self) -> usize {
        self.initializers.values().map(|t| t.dtype().storage_bytes(t.len())).sum()
    }
}

/// Names read by a node's subgraphs from enclosing scopes (transitively).
pub fn subgraph_reads(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for a in node.attrs.values() {
        let graphs: Vec<&Graph> = match a {
            Attr::Graph(g) => vec![g],
            Attr::Graphs(gs) => gs.iter().collect(),
            _ => continue,
        };
        for g in graphs {
            out.extend(g.free_values().into_iter().map(|v| g.value(v).name.clone()));
            for n in &g.nodes {
                for name in subgraph_reads(n) {
                    if g.value_by_name(&name).is_none_or(|v| !defines(g, v)) {
                        out.push(name);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn defines(g: &Graph, v: ValueId) -> bool {
    g.inputs.contains(&v) || g.initializers.contains_key(&v) || g.nodes.iter().any(|n| n.outputs.contains(&Some(v)))
}

/// A whole model: the main graph and what the file said about it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Model {
    pub graph: Graph,
    pub ir_version: i64,
    /// Opset version per domain (`""` is ai.onnx).
    pub opsets: BTreeMap<String, i64>,
    pub producer_name: String,
    pub producer_version: String,
    pub domain: String,
    pub model_version: i64,
    pub doc_string: String,
    /// `metadata_props`, kept verbatim.
    pub metadata: BTreeMap<String, String>,
}

impl Model {
    /// Every node of the model, subgraphs included, with its nesting path.
    pub fn all_nodes(&self) -> Vec<&Node> {
        fn walk<'a>(g: &'a Graph, out: &mut Vec<&'a Node>) {
            for n in &g.nodes {
                out.push(n);
                for a in n.attrs.values() {
                    match a {
                        Attr::Graph(sub) => walk(sub, out),
                        Attr::Graphs(subs) => subs.iter().for_each(|s| walk(s, out)),
                        _ => {}
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.graph, &mut out);
        out
    }
}
