use crate::registry::{Kernel, OpCtx, Registry, registry};
use crate::{ExecError, OpError, Value};
use kiln_ir::{Graph, Model, ValueId};
use kiln_tensor::{Dim, Tensor};
use std::collections::HashMap;

/// Runs models with a kernel registry (the full reference registry by default).
pub struct Executor<'r> {
    registry: &'r Registry,
}

impl Default for Executor<'static> {
    fn default() -> Self {
        Executor { registry: registry() }
    }
}

/// Runs `model` on named inputs with the reference kernels; returns the graph outputs in order.
pub fn run(model: &Model, inputs: Vec<(String, Value)>) -> Result<Vec<(String, Value)>, ExecError> {
    Executor::default().run(model, inputs)
}

/// The values of one graph invocation. Initializers and values of enclosing frames are
/// borrowed, not copied.
struct Frame<'a> {
    graph: &'a Graph,
    vals: Vec<Option<Slot<'a>>>,
}

enum Slot<'a> {
    Owned(Value),
    Init(&'a Tensor),
}

/// A value as a kernel reads it.
#[derive(Clone, Copy)]
enum Ref<'f> {
    Value(&'f Value),
    Tensor(&'f Tensor),
}

impl<'a> Slot<'a> {
    fn get(&self) -> Ref<'_> {
        match self {
            Slot::Owned(v) => Ref::Value(v),
            Slot::Init(t) => Ref::Tensor(t),
        }
    }
}

impl Ref<'_> {
    fn to_value(self) -> Value {
        match self {
            Ref::Value(v) => v.clone(),
            Ref::Tensor(t) => Value::Tensor(t.clone()),
        }
    }
}

impl<'r> Executor<'r> {
    pub fn new(registry: &'r Registry) -> Self {
        Executor { registry }
    }

    pub fn run(&self, model: &Model, inputs: Vec<(String, Value)>) -> Result<Vec<(String, Value)>, ExecError> {
        let g = &model.graph;
        let mut given: HashMap<String, Value> = HashMap::new();
        for (name, v) in inputs {
            if !g.inputs.iter().any(|&i| g.value(i).name == name) {
                let known: Vec<&str> = g.runtime_inputs().iter().map(|&i| g.value(i).name.as_str()).collect();
                return Err(ExecError::UnknownInput { name, known: known.join(", ") });
            }
            given.insert(name, v);
        }
        let mut bound: HashMap<String, (usize, String)> = HashMap::new();
        let mut positional = Vec::with_capacity(g.inputs.len());
        for &id in &g.inputs {
            let info = g.value(id);
            let v = match given.remove(&info.name) {
                Some(v) => v,
                None => match g.initializers.get(&id) {
                    Some(t) => Value::Tensor(t.clone()),
                    None => return Err(ExecError::MissingInput { name: info.name.clone() }),
                },
            };
            if let Value::Tensor(t) = &v {
                check_input(g, id, t, &mut bound)?;
            }
            positional.push(v);
        }
        let outs = self.run_graph(g, positional, &[])?;
        Ok(g.outputs.iter().map(|&o| g.value(o).name.clone()).zip(outs).collect())
    }

    /// Runs one graph with positional inputs; `outer` are the enclosing frames, innermost last.
    fn run_graph(&self, g: &Graph, inputs: Vec<Value>, outer: &[&Frame]) -> Result<Vec<Value>, ExecError> {
        if inputs.len() > g.inputs.len() {
            return Err(ExecError::BadInput {
                name: g.name.clone(),
                reason: format!("graph takes {} inputs, {} given", g.inputs.len(), inputs.len()),
            });
        }
        let mut frame = Frame { graph: g, vals: (0..g.values.len()).map(|_| None).collect() };
        for (&id, t) in &g.initializers {
            frame.vals[id.0] = Some(Slot::Init(t));
        }
        for (&id, v) in g.inputs.iter().zip(inputs) {
            frame.vals[id.0] = Some(Slot::Owned(v));
        }
        let order = g.topo_order()?;
        // Drop each intermediate after its last reader to bound memory.
        let mut last_use: HashMap<ValueId, usize> = HashMap::new();
        for (step, nid) in order.iter().enumerate() {
            let node = &g.nodes[nid.0];
            for v in node.inputs.iter().flatten() {
                last_use.insert(*v, step);
            }
            // Subgraphs read enclosing values by name: those reads count as uses too.
            for name in kiln_ir::subgraph_reads(node) {
                if let Some(v) = g.value_by_name(&name) {
                    last_use.insert(v, step);
                }
            }
        }
        for o in &g.outputs {
            last_use.insert(*o, usize::MAX);
        }
        let mut drop_at: Vec<Vec<ValueId>> = vec![Vec::new(); order.len()];
        for (&v, &step) in &last_use {
            if step < order.len() && !g.initializers.contains_key(&v) {
                drop_at[step].push(v);
            }
        }
        for (step, nid) in order.iter().enumerate() {
            let node = &g.nodes[nid.0];
            if let Some(reason) = &node.unsupported {
                return Err(ExecError::Unsupported { node: node.label(), op: node.qualified_op(), reason: reason.clone() });
            }
            let kernel = self.registry.lookup(&node.domain, &node.op_type, node.opset).ok_or_else(|| ExecError::Unsupported {
                node: node.label(),
                op: node.qualified_op(),
                reason: format!("no kernel for opset {}", node.opset),
            })?;
            let node_err = |source: OpError| ExecError::Node { node: node.label(), op: node.qualified_op(), source };
            let outputs: Vec<Value> = {
                let mut ins: Vec<Option<Ref>> = Vec::with_capacity(node.inputs.len());
                for i in &node.inputs {
                    ins.push(match i {
                        Some(id) => Some(lookup(&frame, outer, *id)?),
                        None => None,
                    });
                }
                let mut scope: Vec<&Frame> = outer.to_vec();
                scope.push(&frame);
                let sub = |sg: &Graph, sin: Vec<Value>| self.run_graph(sg, sin, &scope);
                let cx = OpCtx { node, subgraph: &sub };
                match kernel {
                    Kernel::Tensor(f) => {
                        let mut ts: Vec<Option<&Tensor>> = Vec::with_capacity(ins.len());
                        for (k, v) in ins.iter().enumerate() {
                            ts.push(match *v {
                                None => None,
                                Some(Ref::Tensor(t)) | Some(Ref::Value(Value::Tensor(t))) => Some(t),
                                Some(Ref::Value(other)) => {
                                    return Err(node_err(OpError::Invalid(format!("input {k} must be a tensor, found a {}", other.kind()))));
                                }
                            });
                        }
                        f(&cx, &ts).map_err(node_err)?.into_iter().map(Value::Tensor).collect()
                    }
                    Kernel::Value(f) => {
                        let owned: Vec<Option<Value>> =
                            ins.iter().map(|r| match r { Some(Ref::Tensor(t)) => Some(Value::Tensor((*t).clone())), _ => None }).collect();
                        let vs: Vec<Option<&Value>> = ins
                            .iter()
                            .zip(&owned)
                            .map(|(r, o)| match r {
                                Some(Ref::Value(v)) => Some(*v),
                                _ => o.as_ref(),
                            })
                            .collect();
                        f(&cx, &vs).map_err(node_err)?
                    }
                }
            };
            let wanted = node.outputs.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
            if outputs.len() < wanted {
                return Err(node_err(OpError::Invalid(format!("produced {} outputs, the graph reads {wanted}", outputs.len()))));
            }
            for (slot, v) in node.outputs.iter().zip(outputs) {
                if let Some(id) = slot {
                    frame.vals[id.0] = Some(Slot::Owned(v));
                }
            }
            for v in &drop_at[step] {
                frame.vals[v.0] = None;
            }
        }
        g.outputs
            .iter()
            .map(|&o| match lookup(&frame, outer, o) {
                Ok(v) => Ok(v.to_value()),
                Err(_) => Err(ExecError::MissingOutput { name: g.value(o).name.clone() }),
            })
            .collect()
    }
}

/// A value of this frame, or of an enclosing one by name.
fn lookup<'f>(frame: &'f Frame, outer: &[&'f Frame], id: ValueId) -> Result<Ref<'f>, ExecError> {
    if let Some(v) = &frame.vals[id.0] {
        return Ok(v.get());
    }
    let name = &frame.graph.value(id).name;
    for f in outer.iter().rev() {
        if let Some(oid) = f.graph.value_by_name(name)
            && let Some(v) = &f.vals[oid.0]
        {
            return Ok(v.get());
        }
    }
    Err(ExecError::Undefined { name: name.clone() })
}

/// Checks a main-graph input against its declared type and binds symbolic dims consistently.
fn check_input(g: &Graph, id: ValueId, t: &Tensor, bound: &mut HashMap<String, (usize, String)>) -> Result<(), ExecError> {
    let info = g.value(id);
    let bad = |reason: String| ExecError::BadInput { name: info.name.clone(), reason };
    if let Some(d) = info.dtype
        && d != t.dtype()
    {
        return Err(bad(format!("expects {d} elements, got {}", t.dtype())));
    }
    let Some(shape) = &info.shape else { return Ok(()) };
    if shape.rank() != t.rank() {
        return Err(bad(format!("expects shape {shape} (rank {}), got {:?}", shape.rank(), t.shape())));
    }
    for (i, (d, &n)) in shape.0.iter().zip(t.shape()).enumerate() {
        match d {
            Dim::Known(k) if *k != n => {
                return Err(bad(format!("dimension {i} must be {k} (shape {shape}), got {n}")));
            }
            Dim::Sym(s) => match bound.get(s) {
                Some((prev, from)) if *prev != n => {
                    return Err(bad(format!("dimension '{s}' is {prev} from input '{from}' but {n} here")));
                }
                Some(_) => {}
                None => {
                    bound.insert(s.clone(), (n, info.name.clone()));
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn no_subgraphs(g: &Graph, _: Vec<Value>) -> Result<Vec<Value>, ExecError> {
    Err(ExecError::Unsupported {
        node: g.name.clone(),
        op: "subgraph".into(),
        reason: "a single node run outside a graph cannot run subgraphs".into(),
    })
}

/// Runs one node on tensors with the reference kernels, outside any graph: how other
/// executors fall back to the oracle for ops they do not implement. Nodes with subgraphs
/// (If/Loop/Scan) cannot run this way.
pub fn run_node(node: &kiln_ir::Node, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, ExecError> {
    let reg = registry();
    let kernel = reg.lookup(&node.domain, &node.op_type, node.opset).ok_or_else(|| ExecError::Unsupported {
        node: node.label(),
        op: node.qualified_op(),
        reason: format!("no kernel for opset {}", node.opset),
    })?;
    let cx = OpCtx { node, subgraph: &no_subgraphs };
    let err = |source: OpError| ExecError::Node { node: node.label(), op: node.qualified_op(), source };
    match kernel {
        Kernel::Tensor(f) => f(&cx, inputs).map_err(err),
        Kernel::Value(f) => {
            let owned: Vec<Option<Value>> = inputs.iter().map(|t| t.map(|t| Value::Tensor(t.clone()))).collect();
            let refs: Vec<Option<&Value>> = owned.iter().map(Option::as_ref).collect();
            f(&cx, &refs)
                .map_err(err)?
                .into_iter()
                .map(|v| v.into_tensor().ok_or_else(|| err(OpError::Invalid("produced a non-tensor value".into()))))
                .collect()
        }
    }
}
