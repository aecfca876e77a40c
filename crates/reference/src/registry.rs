use crate::{ExecError, OpError, Value, ops};
use kiln_ir::{Graph, Node, OpSet, normalize_domain};
use kiln_tensor::Tensor;
use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

/// A kernel over tensors: most ops.
pub type TensorFn = fn(&OpCtx, &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError>;
/// A kernel over any runtime values: control flow, sequences, optionals.
pub type ValueFn = fn(&OpCtx, &[Option<&Value>]) -> Result<Vec<Value>, OpError>;

#[derive(Clone, Copy)]
pub enum Kernel {
    Tensor(TensorFn),
    Value(ValueFn),
}

struct Entry {
    opsets: RangeInclusive<i64>,
    kernel: Kernel,
}

/// Kernels keyed by (domain, op_type), each for an inclusive opset range.
#[derive(Default)]
pub struct Registry {
    entries: HashMap<(String, String), Vec<Entry>>,
}

impl Registry {
    /// Registers an ai.onnx tensor kernel.
    pub fn tensor(&mut self, op: &str, opsets: RangeInclusive<i64>, f: TensorFn) {
        self.insert("", op, opsets, Kernel::Tensor(f));
    }

    /// Registers an ai.onnx kernel over runtime values.
    pub fn value(&mut self, op: &str, opsets: RangeInclusive<i64>, f: ValueFn) {
        self.insert("", op, opsets, Kernel::Value(f));
    }

    pub fn insert(&mut self, domain: &str, op: &str, opsets: RangeInclusive<i64>, kernel: Kernel) {
        self.entries
            .entry((normalize_domain(domain).to_string(), op.to_string()))
            .or_default()
            .push(Entry { opsets, kernel });
    }

    pub fn lookup(&self, domain: &str, op: &str, opset: i64) -> Option<Kernel> {
        self.entries
            .get(&(normalize_domain(domain).to_string(), op.to_string()))?
            .iter()
            .find(|e| e.opsets.contains(&opset))
            .map(|e| e.kernel)
    }

    /// What this registry supports, for the importer and `kiln inspect`.
    pub fn op_set(&self) -> OpSet {
        let mut set = OpSet::new("the reference executor");
        for ((domain, op), entries) in &self.entries {
            let lo = entries.iter().map(|e| *e.opsets.start()).min().unwrap_or(1);
            let hi = entries.iter().map(|e| *e.opsets.end()).max().unwrap_or(1);
            set.insert(domain, op, lo, hi);
        }
        set
    }
}

/// The registry with every reference kernel, built once.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = Registry::default();
        ops::register_all(&mut r);
        r
    })
}

/// The ops the reference executor supports.
pub fn op_set() -> OpSet {
    registry().op_set()
}

/// What a kernel sees besides its inputs: the node (attributes, opset) and a way to run
/// the node's subgraphs in the current scope.
pub struct OpCtx<'a> {
    pub node: &'a Node,
    pub(crate) subgraph: &'a SubgraphFn<'a>,
}

/// Runs a subgraph with positional inputs in the scope of the node being executed.
pub(crate) type SubgraphFn<'a> = dyn Fn(&Graph, Vec<Value>) -> Result<Vec<Value>, ExecError> + 'a;

impl OpCtx<'_> {
    /// The opset of the node's domain the model was imported under.
    pub fn opset(&self) -> i64 {
        self.node.opset
    }
    pub fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.node.attr_int(name).unwrap_or(default)
    }
    pub fn attr_f(&self, name: &str, default: f32) -> f32 {
        self.node.attr_float(name).unwrap_or(default)
    }
    pub fn attr_s<'s>(&'s self, name: &str, default: &'s str) -> &'s str {
        self.node.attr_str(name).unwrap_or(default)
    }
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        self.node.attr_ints(name)
    }
    pub fn attr_floats(&self, name: &str) -> Option<&[f32]> {
        self.node.attr_floats(name)
    }
    pub fn has_attr(&self, name: &str) -> bool {
        self.node.attrs.contains_key(name)
    }
    /// A required attribute of ints.
    pub fn req_ints(&self, name: &str) -> Result<&[i64], OpError> {
        self.attr_ints(name).ok_or_else(|| OpError::Invalid(format!("attribute '{name}' is required")))
    }
    /// A required int attribute.
    pub fn req_i(&self, name: &str) -> Result<i64, OpError> {
        self.node.attr_int(name).ok_or_else(|| OpError::Invalid(format!("attribute '{name}' is required")))
    }
    /// A required subgraph attribute.
    pub fn graph(&self, name: &str) -> Result<&Graph, OpError> {
        self.node.attr_graph(name).ok_or_else(|| OpError::Invalid(format!("subgraph attribute '{name}' is required")))
    }
    /// Runs `graph` (one of this node's subgraphs) with positional inputs, in this node's scope.
    pub fn run_subgraph(&self, graph: &Graph, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        (self.subgraph)(graph, inputs).map_err(|e| OpError::Invalid(format!("in subgraph '{}': {e}", graph.name)))
    }
}
