//! Single-node test cases for a target's native kernels: one node with its weights as
//! initializers (shapes and attributes the ONNX node suite does not reach with constant
//! weights), the model it makes, the reference executor's output, and the comparison. The
//! per-target tests (`tests/cpu_ops.rs`, `tests/wgpu_ops.rs`) list the cases and compile them.

use kiln_ir::{Attr, Graph, Model, Node};
use kiln_reference::Value;
use kiln_tensor::{Shape, Tensor};
use std::collections::BTreeMap;

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One input of the node.
pub enum In {
    /// A runtime input of this shape (seeded values).
    X(&'static [usize]),
    /// A constant of this shape (seeded values).
    W(&'static [usize]),
    /// A constant with these values.
    Vals(&'static [usize], &'static [f32]),
    /// A constant i64 vector.
    Ints(&'static [i64]),
    /// A runtime i64 input of this shape with these values (indices, token ids).
    XInts(&'static [usize], &'static [i64]),
    /// An omitted optional input.
    Absent,
}

pub struct Case {
    pub name: &'static str,
    pub domain: &'static str,
    pub op: &'static str,
    pub inputs: Vec<In>,
    pub attrs: Vec<(&'static str, Attr)>,
    /// The kernel the node must be lowered to.
    pub kernel: &'static str,
}

/// An ai.onnx case.
pub fn case(name: &'static str, op: &'static str, inputs: Vec<In>, attrs: Vec<(&'static str, Attr)>, kernel: &'static str) -> Case {
    Case { name, domain: "", op, inputs, attrs, kernel }
}

pub fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

pub fn string(s: &str) -> Attr {
    Attr::String(s.as_bytes().to_vec())
}

/// `kiln::Chain` attributes for (op, operand, swap) triples; every op gets the same alpha / beta.
pub fn chain_attrs(ops: &[(&str, i64, i64)], alpha: f32, beta: f32) -> Vec<(&'static str, Attr)> {
    vec![
        ("ops", Attr::Strings(ops.iter().map(|o| o.0.as_bytes().to_vec()).collect())),
        ("operands", Attr::Ints(ops.iter().map(|o| o.1).collect())),
        ("swap", Attr::Ints(ops.iter().map(|o| o.2).collect())),
        ("alpha", Attr::Floats(vec![alpha; ops.len()])),
        ("beta", Attr::Floats(vec![beta; ops.len()])),
    ]
}

/// A case made runnable: the model, its runtime feeds, and the reference executor's output.
pub type Built = (Model, Vec<(String, Tensor)>, Tensor);

/// The case as a model (ai.onnx opset 17, kiln opset 1), its runtime feeds, and the reference
/// executor's output.
pub fn model(c: &Case) -> Result<Built, String> {
    let mut g = Graph::new("g");
    let mut feeds = Vec::new();
    let mut node_inputs = Vec::new();
    for (i, input) in c.inputs.iter().enumerate() {
        let name = format!("in{i}");
        let t = match input {
            In::Absent => {
                node_inputs.push(None);
                continue;
            }
            In::X(s) | In::W(s) => Tensor::from_vec(s.to_vec(), values(s.iter().product(), i as u64 + 1)),
            In::Vals(s, v) => Tensor::from_vec(s.to_vec(), v.to_vec()),
            In::Ints(v) => Tensor::from_vec(vec![v.len()], v.to_vec()),
            In::XInts(s, v) => Tensor::from_vec(s.to_vec(), v.to_vec()),
        }
        .map_err(|e| e.to_string())?;
        let v = g.add_value(&name, Some(t.dtype()), Some(Shape::known(t.shape())));
        if let In::X(_) | In::XInts(..) = input {
            g.inputs.push(v);
            feeds.push((name, t));
        } else {
            g.initializers.insert(v, t);
        }
        node_inputs.push(Some(v));
    }
    let out = g.add_value("y", None, None);
    g.nodes.push(Node {
        name: c.name.into(),
        op_type: c.op.into(),
        domain: c.domain.into(),
        opset: if c.domain.is_empty() { 17 } else { 1 },
        inputs: node_inputs,
        outputs: vec![Some(out)],
        attrs: c.attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
        unsupported: None,
    });
    g.outputs.push(out);
    let mut opsets = BTreeMap::from([(String::new(), 17)]);
    if !c.domain.is_empty() {
        opsets.insert(c.domain.to_string(), 1);
    }
    let model = Model { graph: g, ir_version: 8, opsets, ..Model::default() };
    let want = kiln_reference::run(&model, feeds.iter().map(|(n, t)| (n.clone(), Value::Tensor(t.clone()))).collect())
        .map_err(|e| format!("reference: {e}"))?;
    match want.into_iter().next() {
        Some((_, Value::Tensor(w))) => Ok((model, feeds, w)),
        _ => Err("the reference executor gave no tensor output".into()),
    }
}

/// The plan's kernels must include the case's: a silent fallback fails it.
pub fn check_kernel(c: &Case, kernels: &[&str]) -> Result<(), String> {
    if !kernels.contains(&c.kernel) {
        return Err(format!("lowered to {kernels:?}, expected {} (a silent fallback)", c.kernel));
    }
    Ok(())
}

/// `got` within `rel` x max(1, max |want|) of `want`, elementwise.
pub fn check_close(got: &Tensor, want: &Tensor, rel: f64, who: &str) -> Result<(), String> {
    let (diff, scale) = crate::models::max_abs_diff(got, want)?;
    if diff > rel * scale.max(1.0) {
        return Err(format!("max |{who} - reference| = {diff:.3e} (scale {scale:.3e})"));
    }
    Ok(())
}
