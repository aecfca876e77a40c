//! Small graphs for pass tests, built concisely, and the "IR before -> IR after" text.

use kiln_ir::{Attr, DEFAULT_DOMAIN, Graph, Model, Node, ValueId, dump};
use kiln_passes::Pass;
use kiln_reference::Value;
use kiln_tensor::{DType, Data, Dim, Shape, Tensor};
use std::collections::BTreeMap;

/// A graph under construction (ai.onnx opset 17 unless set).
pub struct B {
    g: Graph,
    opset: i64,
    ir_version: i64,
}

pub fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}
pub fn int(v: i64) -> Attr {
    Attr::Int(v)
}
pub fn float(v: f32) -> Attr {
    Attr::Float(v)
}
pub fn string(v: &str) -> Attr {
    Attr::String(v.as_bytes().to_vec())
}

/// "f32[N,3,8,8]", "i64[2]", "f32" (scalar), "f32[?]" (rank unknown) or "?" (nothing known).
pub fn ty(s: &str) -> (Option<DType>, Option<Shape>) {
    if s == "?" {
        return (None, None);
    }
    let (d, rest) = s.split_once('[').unwrap_or((s, "]"));
    let dtype = DType::from_name(d).unwrap_or_else(|| panic!("unknown dtype {d}"));
    let body = rest.trim_end_matches(']');
    if body == "?" {
        return (Some(dtype), None);
    }
    let dims = body.split(',').filter(|p| !p.is_empty()).map(|p| p.parse().map_or_else(|_| Dim::Sym(p.to_string()), Dim::Known)).collect();
    (Some(dtype), Some(Shape(dims)))
}

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9e3779b97f4a7c15);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

impl B {
    pub fn new() -> B {
        B { g: Graph::new("g"), opset: 17, ir_version: 8 }
    }

    pub fn opset(mut self, v: i64) -> B {
        self.opset = v;
        self
    }

    pub fn input(&mut self, name: &str, t: &str) -> ValueId {
        let (dtype, shape) = ty(t);
        let v = self.g.add_value(name, dtype, shape);
        self.g.inputs.push(v);
        v
    }

    pub fn init(&mut self, name: &str, t: Tensor) -> ValueId {
        let v = self.g.add_value(name, Some(t.dtype()), Some(Shape::known(t.shape())));
        self.g.initializers.insert(v, t);
        v
    }

    pub fn f32s(&mut self, name: &str, shape: &[usize], v: &[f32]) -> ValueId {
        self.init(name, Tensor::from_vec(shape.to_vec(), v.to_vec()).expect("tensor"))
    }

    /// A constant of deterministic pseudo-random values.
    pub fn rand(&mut self, name: &str, shape: &[usize], seed: u64) -> ValueId {
        let n = shape.iter().product();
        self.f32s(name, shape, &values(n, seed))
    }

    pub fn scalar(&mut self, name: &str, v: f32) -> ValueId {
        self.init(name, Tensor::scalar(v))
    }

    pub fn i64s(&mut self, name: &str, v: &[i64]) -> ValueId {
        self.init(name, Tensor::from_vec(vec![v.len()], v.to_vec()).expect("tensor"))
    }

    /// A node with one output named `out` (no facts: passes derive them).
    pub fn op(&mut self, out: &str, op: &str, inputs: &[ValueId], attrs: Vec<(&str, Attr)>) -> ValueId {
        self.op_n(&[out], op, inputs, attrs)[0]
    }

    /// A node with several outputs.
    pub fn op_n(&mut self, outs: &[&str], op: &str, inputs: &[ValueId], attrs: Vec<(&str, Attr)>) -> Vec<ValueId> {
        self.node(outs, DEFAULT_DOMAIN, op, inputs.iter().map(|&v| Some(v)).collect(), attrs)
    }

    pub fn node(&mut self, outs: &[&str], domain: &str, op: &str, inputs: Vec<Option<ValueId>>, attrs: Vec<(&str, Attr)>) -> Vec<ValueId> {
        let outputs: Vec<ValueId> = outs.iter().map(|o| self.g.add_value(*o, None, None)).collect();
        let opset = if domain.is_empty() { self.opset } else { 1 };
        self.g.nodes.push(Node {
            name: String::new(),
            op_type: op.into(),
            domain: domain.into(),
            opset,
            inputs,
            outputs: outputs.iter().map(|&v| Some(v)).collect(),
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
            unsupported: None,
        });
        outputs
    }

    /// Declares facts of a value (as a model's value_info would).
    pub fn declare(&mut self, v: ValueId, t: &str) {
        let (dtype, shape) = ty(t);
        let info = self.g.value_mut(v);
        info.dtype = dtype;
        info.shape = shape;
    }

    pub fn output(&mut self, v: ValueId) {
        self.g.outputs.push(v);
    }

    pub fn model(self) -> Model {
        let mut opsets = BTreeMap::new();
        opsets.insert(String::new(), self.opset);
        Model { graph: self.g, ir_version: self.ir_version, opsets, ..Model::default() }
    }
}

/// Runs `passes` through the driver; returns "IR before --- names --> IR after".
pub fn before_after(m: &Model, passes: Vec<Box<dyn Pass>>) -> (String, Model) {
    let names: Vec<&str> = passes.iter().map(|p| p.name()).collect();
    let arrow = format!("--- {} --->\n", names.join(", "));
    let mut after = m.clone();
    kiln_passes::optimize(&mut after, &passes).unwrap_or_else(|e| panic!("{e}"));
    (format!("{}{arrow}{}", dump(m), dump(&after)), after)
}

/// One pass: the before -> after text.
pub fn run(m: &Model, pass: impl Pass + 'static) -> String {
    before_after(m, vec![Box::new(pass)]).0
}

/// Both models give the same outputs on seeded inputs.
pub fn same_outputs(a: &Model, b: &Model, shapes: &[(&str, &[usize])], tol: f64) {
    let g = &a.graph;
    let feeds: Vec<(String, Value)> = g
        .runtime_inputs()
        .into_iter()
        .enumerate()
        .map(|(k, id)| {
            let info = g.value(id);
            let shape = match shapes.iter().find(|(n, _)| *n == info.name) {
                Some((_, s)) => s.to_vec(),
                None => info.shape.as_ref().and_then(|s| s.concrete()).unwrap_or_else(|| panic!("input '{}' needs a shape", info.name)),
            };
            let n: usize = shape.iter().product();
            let v: Vec<f64> = values(n, 100 + k as u64).into_iter().map(f64::from).collect();
            let dtype = info.dtype.unwrap_or(DType::F32);
            (info.name.clone(), Value::Tensor(Tensor::new(shape, Data::from_f64_vec(dtype, &v).expect("data")).expect("tensor")))
        })
        .collect();
    let want = kiln_reference::run(a, feeds.clone()).unwrap_or_else(|e| panic!("before: {e}"));
    let got = kiln_reference::run(b, feeds).unwrap_or_else(|e| panic!("after: {e}"));
    for ((name, w), (_, gv)) in want.iter().zip(&got) {
        let (w, gv) = (w.as_tensor().expect("tensor"), gv.as_tensor().expect("tensor"));
        assert_eq!(w.shape(), gv.shape(), "output '{name}' changed shape");
        let (x, y) = (w.to_f64_vec().expect("numbers"), gv.to_f64_vec().expect("numbers"));
        let scale = x.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let diff = x.iter().zip(&y).fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff <= tol * scale, "output '{name}': max difference {diff:e} exceeds {tol:e} x {scale}");
    }
}
