use crate::{Attr, Graph, IrError, Model, Node};
use std::collections::{HashMap, HashSet};

/// Ops whose listed inputs must all share one element type (ONNX type constraint `T`).
const SAME_TYPE_INPUTS: &[(&str, &[usize])] = &[
    ("Add", &[0, 1]),
    ("Sub", &[0, 1]),
    ("Mul", &[0, 1]),
    ("Div", &[0, 1]),
    ("MatMul", &[0, 1]),
    ("Gemm", &[0, 1]),
    ("Equal", &[0, 1]),
    ("Less", &[0, 1]),
    ("Greater", &[0, 1]),
    ("LessOrEqual", &[0, 1]),
    ("GreaterOrEqual", &[0, 1]),
    ("And", &[0, 1]),
    ("Or", &[0, 1]),
    ("Xor", &[0, 1]),
    ("Where", &[1, 2]),
    ("Conv", &[0, 1]),
];

/// Checks the model's graph and every subgraph: value ids in range, no value defined twice,
/// no dangling reads, outputs defined, no cycles, and the element-type rules that the IR
/// can check without op semantics. The first problem found is returned, naming its node.
pub fn verify(model: &Model) -> Result<(), IrError> {
    verify_graph(&model.graph, &HashSet::new())
}

fn verify_graph(g: &Graph, outer: &HashSet<String>) -> Result<(), IrError> {
    let n_values = g.values.len();
    let check_id = |id: usize| {
        if id >= n_values { Err(IrError::BadValueId { graph: g.name.clone(), id }) } else { Ok(()) }
    };
    let mut defined_by: HashMap<usize, String> = HashMap::new();
    for i in &g.inputs {
        check_id(i.0)?;
        defined_by.insert(i.0, "graph input".into());
    }
    for i in g.initializers.keys() {
        check_id(i.0)?;
        defined_by.entry(i.0).or_insert_with(|| "initializer".into());
    }
    for n in &g.nodes {
        for o in n.outputs.iter().flatten() {
            check_id(o.0)?;
            let by = format!("node '{}' ({})", n.label(), n.op_type);
            if let Some(first) = defined_by.insert(o.0, by.clone()) {
                return Err(IrError::Redefined { value: g.values[o.0].name.clone(), first, second: by });
            }
        }
    }
    for n in &g.nodes {
        for i in n.inputs.iter().flatten() {
            check_id(i.0)?;
            let name = &g.values[i.0].name;
            if !defined_by.contains_key(&i.0) && !outer.contains(name) {
                return Err(IrError::Dangling { node: n.label(), op: n.op_type.clone(), value: name.clone() });
            }
        }
        check_types(g, n)?;
    }
    for o in &g.outputs {
        check_id(o.0)?;
        let name = &g.values[o.0].name;
        if !defined_by.contains_key(&o.0) && !outer.contains(name) {
            return Err(IrError::DanglingOutput { value: name.clone() });
        }
    }
    g.topo_order()?;
    // Subgraphs see every name visible here.
    let mut visible: HashSet<String> = outer.clone();
    visible.extend(defined_by.keys().map(|&i| g.values[i].name.clone()));
    for n in &g.nodes {
        for (attr, a) in &n.attrs {
            let subs: Vec<&Graph> = match a {
                Attr::Graph(s) => vec![s],
                Attr::Graphs(s) => s.iter().collect(),
                _ => continue,
            };
            for s in subs {
                verify_graph(s, &visible).map_err(|e| IrError::Subgraph {
                    node: n.label(),
                    attr: attr.clone(),
                    inner: Box::new(e),
                })?;
            }
        }
    }
    Ok(())
}

fn check_types(g: &Graph, n: &Node) -> Result<(), IrError> {
    if !n.domain.is_empty() || n.unsupported.is_some() {
        return Ok(());
    }
    let type_err = |message: String| IrError::Type { node: n.label(), op: n.op_type.clone(), message };
    let dtype_of = |i: usize| n.inputs.get(i).copied().flatten().and_then(|v| g.values[v.0].dtype.map(|d| (v, d)));
    if let Some((_, idx)) = SAME_TYPE_INPUTS.iter().find(|(op, _)| *op == n.op_type) {
        let typed: Vec<_> = idx.iter().filter_map(|&i| dtype_of(i)).collect();
        if let Some(&(v0, d0)) = typed.first()
            && let Some(&(v1, d1)) = typed.iter().find(|(_, d)| *d != d0)
        {
            return Err(type_err(format!(
                "inputs must share one element type, but '{}' is {d0} and '{}' is {d1}",
                g.values[v0.0].name, g.values[v1.0].name
            )));
        }
    }
    if n.op_type == "Where"
        && let Some((v, d)) = dtype_of(0)
        && d != kiln_tensor::DType::Bool
    {
        return Err(type_err(format!("condition '{}' must be bool, found {d}", g.values[v.0].name)));
    }
    Ok(())
}
