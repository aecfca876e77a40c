//! A small helper for writing graphs op by op: unique names, constants as initializers, and
//! every node at the builder's ai.onnx opset.

use kiln_ir::{Attr, Graph, Model, Node, OpSet, ValueId};
use kiln_tensor::{DType, Dim, Shape, Tensor};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The ai.onnx opset builders write (LayerNormalization is 17; Reduce* keep `axes` as an
/// attribute until 18).
pub const OPSET: i64 = 17;
/// The ONNX IR version of opset 17 (ONNX 1.12).
pub const IR_VERSION: i64 = 8;

pub struct GraphBuilder {
    pub graph: Graph,
    names: HashSet<String>,
    /// Small constants, shared: key (name and value) -> value.
    consts: HashMap<String, ValueId>,
    scope: String,
    count: usize,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        GraphBuilder::new("main")
    }
}

impl GraphBuilder {
    pub fn new(name: &str) -> GraphBuilder {
        GraphBuilder { graph: Graph::new(name), names: HashSet::new(), consts: HashMap::new(), scope: String::new(), count: 0 }
    }

    /// Names of the nodes made next start with `/scope/` (as PyTorch's exporter names them).
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = scope.to_string();
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        while !self.names.insert(name.clone()) {
            self.count += 1;
            name = format!("{base}_{}", self.count);
        }
        name
    }

    /// A runtime input of `dtype` and symbolic/known `dims`.
    pub fn input(&mut self, name: &str, dtype: DType, dims: &[Dim]) -> ValueId {
        let name = self.fresh(name);
        let v = self.graph.add_value(name, Some(dtype), Some(Shape(dims.to_vec())));
        self.graph.inputs.push(v);
        v
    }

    /// An initializer under `name` (a checkpoint tensor keeps its checkpoint name).
    pub fn init(&mut self, name: &str, t: Tensor) -> ValueId {
        let name = self.fresh(name);
        let v = self.graph.add_value(name, Some(t.dtype()), Some(Shape::known(t.shape())));
        self.graph.initializers.insert(v, t);
        v
    }

    /// A small constant, shared by every node that asks for the same name and value.
    fn constant(&mut self, name: &str, t: Tensor) -> ValueId {
        let key = format!("{name}={:?}", t.data());
        if let Some(&v) = self.consts.get(&key) {
            return v;
        }
        let v = self.init(&format!("/const/{name}"), t);
        self.consts.insert(key, v);
        v
    }

    /// An i64 vector constant (shapes, axes).
    pub fn const_i64(&mut self, name: &str, v: &[i64]) -> ValueId {
        self.constant(name, Tensor::new(vec![v.len()], kiln_tensor::Data::I64(v.to_vec())).unwrap_or_else(|_| Tensor::scalar(0i64)))
    }

    pub fn scalar_i64(&mut self, name: &str, v: i64) -> ValueId {
        self.constant(name, Tensor::scalar(v))
    }

    pub fn scalar_f32(&mut self, name: &str, v: f32) -> ValueId {
        self.constant(name, Tensor::scalar(v))
    }

    fn scope_prefix(&self) -> String {
        if self.scope.is_empty() { "/".into() } else { format!("/{}/", self.scope) }
    }

    /// Adds `op(inputs)` with one output and returns it.
    pub fn op(&mut self, op: &str, inputs: &[ValueId], attrs: Vec<(&str, Attr)>) -> ValueId {
        self.op_n(op, inputs, attrs, 1)[0]
    }

    /// Adds `op(inputs)` with `outputs` outputs.
    pub fn op_n(&mut self, op: &str, inputs: &[ValueId], attrs: Vec<(&str, Attr)>, outputs: usize) -> Vec<ValueId> {
        let name = self.fresh(&format!("{}{op}", self.scope_prefix()));
        let outs: Vec<ValueId> = (0..outputs).map(|i| self.graph.add_value(format!("{name}_output_{i}"), None, None)).collect();
        let attrs: BTreeMap<String, Attr> = attrs.into_iter().map(|(k, a)| (k.to_string(), a)).collect();
        self.graph.add_node(Node {
            name,
            op_type: op.to_string(),
            domain: String::new(),
            opset: OPSET,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: outs.iter().map(|&v| Some(v)).collect(),
            attrs,
            unsupported: None,
        });
        outs
    }

    /// Declares `v` a graph output, renamed to `name` and typed.
    pub fn output(&mut self, v: ValueId, name: &str, dtype: DType, dims: &[Dim]) {
        let name = self.fresh(name);
        let info = self.graph.value_mut(v);
        info.name = name;
        info.dtype = Some(dtype);
        info.shape = Some(Shape(dims.to_vec()));
        self.graph.outputs.push(v);
    }

    /// The model: opset 17, nodes outside `ops` marked unsupported (as the ONNX importer does),
    /// verified.
    pub fn finish(mut self, ops: &OpSet, metadata: BTreeMap<String, String>) -> Result<Model, kiln_ir::IrError> {
        for n in &mut self.graph.nodes {
            if !ops.supports(&n.domain, &n.op_type, n.opset) {
                n.unsupported = Some(format!("{} has no {} op at opset {}", ops.name(), n.op_type, n.opset));
            }
        }
        let model = Model {
            graph: self.graph,
            ir_version: IR_VERSION,
            opsets: BTreeMap::from([(String::new(), OPSET)]),
            producer_name: "kiln-hf".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            metadata,
            ..Model::default()
        };
        kiln_ir::verify(&model)?;
        Ok(model)
    }
}

/// Shorthand for attribute lists.
pub fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}
