//! Lowering an optimized IR model to a CPU plan.

use kiln_ir::{Attr, Model};
use kiln_target::{AttrValue, CompileOptions, DimSpec, Plan, PlanValue, Step, TargetError, TargetId, Tuner, WeightRef};
use kiln_tensor::Tensor;

/// Weight blobs start on 64-byte boundaries (cache lines, AVX-512 loads).
const ALIGN: usize = 64;

struct Blob {
    plan_weights: Vec<WeightRef>,
    bytes: Vec<u8>,
}

impl Blob {
    fn push(&mut self, name: &str, t: &Tensor) -> Result<usize, String> {
        let raw = t.to_raw_bytes().ok_or_else(|| format!("weight '{name}' is a {} tensor, which plans cannot store", t.dtype()))?;
        let offset = self.bytes.len().div_ceil(ALIGN) * ALIGN;
        self.bytes.resize(offset, 0);
        self.bytes.extend_from_slice(&raw);
        self.plan_weights.push(WeightRef {
            name: name.to_string(),
            dtype: t.dtype().name().to_string(),
            shape: t.shape().to_vec(),
            layout: "row-major".into(),
            offset: offset as u64,
            bytes: raw.len() as u64,
        });
        Ok(self.plan_weights.len() - 1)
    }
}

/// One step per node in topological order: nodes the CPU kernels cover (see `native`) get a
/// native kernel and a tuned variant; the rest run on the reference kernel (`reference`).
pub fn lower(model: &Model, id: TargetId, opts: &CompileOptions, tuner: &mut Tuner) -> Result<(Plan, Vec<u8>), TargetError> {
    let g = &model.graph;
    let lower_err = |node: &kiln_ir::Node, reason: String| TargetError::Lower {
        target: "cpu".into(),
        node: node.label(),
        op: node.qualified_op(),
        reason,
    };
    let mut plan = Plan::new(id);
    let mut blob = Blob { plan_weights: Vec::new(), bytes: Vec::new() };
    for v in &g.values {
        plan.values.push(PlanValue {
            name: v.name.clone(),
            dtype: v.dtype.map_or_else(|| "?".to_string(), |d| d.name().to_string()),
            shape: v.shape.as_ref().map(|s| s.0.iter().map(DimSpec::from).collect()),
            weight: None,
        });
    }
    for (&v, t) in &g.initializers {
        let w = blob.push(&g.value(v).name, t).map_err(|reason| TargetError::Lower {
            target: "cpu".into(),
            node: g.value(v).name.clone(),
            op: "initializer".into(),
            reason,
        })?;
        plan.values[v.0].weight = Some(w);
    }
    plan.inputs = g.runtime_inputs().iter().map(|v| v.0).collect();
    plan.outputs = g.outputs.iter().map(|v| v.0).collect();
    for nid in g.topo_order().map_err(|e| TargetError::Lower {
        target: "cpu".into(),
        node: String::new(),
        op: String::new(),
        reason: e.to_string(),
    })? {
        let node = &g.nodes[nid.0];
        if let Some(why) = &node.unsupported {
            return Err(lower_err(node, why.clone()));
        }
        let mut attrs = std::collections::BTreeMap::new();
        for (k, a) in &node.attrs {
            let v = match a {
                Attr::Int(i) => AttrValue::Int(*i),
                Attr::Float(f) => AttrValue::Float(*f),
                Attr::Ints(v) => AttrValue::Ints(v.clone()),
                Attr::Floats(v) => AttrValue::Floats(v.clone()),
                Attr::String(s) => AttrValue::String(String::from_utf8_lossy(s).into_owned()),
                Attr::Strings(v) => AttrValue::Strings(v.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
                Attr::Tensor(t) => AttrValue::Tensor(blob.push(&format!("{}.{k}", node.label()), t).map_err(|r| lower_err(node, r))?),
                Attr::Type(_) => return Err(lower_err(node, format!("type attribute '{k}' is not supported by the CPU target"))),
                Attr::Graph(_) | Attr::Graphs(_) => {
                    return Err(lower_err(node, "control flow (subgraph attributes) is not supported by the CPU target yet".into()));
                }
                Attr::Tensors(_) => return Err(lower_err(node, format!("tensor-list attribute '{k}' is not supported by the CPU target"))),
            };
            attrs.insert(k.clone(), v);
        }
        let (kernel, variant) =
            match crate::native::lower(g, node, &crate::native::Dims { dims: &opts.dims, shapes: &opts.tuning_shapes }, tuner)? {
                Some(l) => (l.kernel.to_string(), l.variant),
                None => ("reference".to_string(), "default".to_string()),
            };
        plan.steps.push(Step {
            node: node.name.clone(),
            op: node.op_type.clone(),
            domain: node.domain.clone(),
            kernel,
            variant,
            inputs: node.inputs.iter().map(|i| i.map(|v| v.0)).collect(),
            outputs: node.outputs.iter().map(|o| o.map(|v| v.0)).collect(),
            attrs,
            opset: node.opset,
            launch: None,
        });
    }
    plan.weights = blob.plan_weights;
    Ok((plan, blob.bytes))
}
