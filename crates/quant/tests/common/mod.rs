//! Shared test helpers: a deterministic random source, small graph building, reference runs.
#![allow(dead_code, clippy::unwrap_used)]

use kiln_ir::{Attr, Graph, Model, Node, ValueId};
use kiln_reference::Value;
use kiln_tensor::{DType, Dim, Shape, Tensor};
use std::collections::BTreeMap;

/// A small deterministic generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| (self.uniform() as f32 * 2.0 - 1.0) * scale).collect()
    }
}

/// A graph under construction, ai.onnx opset 17.
pub struct B {
    pub g: Graph,
    rng: Rng,
}

impl B {
    pub fn new(seed: u64) -> B {
        B { g: Graph::new("g"), rng: Rng::new(seed) }
    }
    pub fn input(&mut self, name: &str, dims: &[&str]) -> ValueId {
        let shape = Shape(dims.iter().map(|d| d.parse().map_or_else(|_| Dim::Sym(d.to_string()), Dim::Known)).collect());
        let v = self.g.add_value(name, Some(DType::F32), Some(shape));
        self.g.inputs.push(v);
        v
    }
    /// A constant of random values in [-scale, scale).
    pub fn weight(&mut self, name: &str, shape: &[usize], scale: f32) -> ValueId {
        let n = shape.iter().product();
        let t = Tensor::from_vec(shape.to_vec(), self.rng.vec(n, scale)).unwrap();
        let v = self.g.add_value(name, Some(DType::F32), Some(Shape::known(shape)));
        self.g.initializers.insert(v, t);
        v
    }
    pub fn op(&mut self, name: &str, op: &str, inputs: &[ValueId], attrs: Vec<(&str, Attr)>) -> ValueId {
        let out = self.g.add_value(name, None, None);
        self.g.nodes.push(Node {
            name: name.to_string(),
            op_type: op.into(),
            domain: String::new(),
            opset: 17,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: vec![Some(out)],
            attrs: attrs.into_iter().map(|(k, a)| (k.to_string(), a)).collect::<BTreeMap<_, _>>(),
            unsupported: None,
        });
        out
    }
    pub fn output(&mut self, v: ValueId) {
        self.g.value_mut(v).dtype = Some(DType::F32);
        self.g.outputs.push(v);
    }
    pub fn model(&self) -> Model {
        Model { graph: self.g.clone(), ir_version: 8, opsets: [(String::new(), 17)].into(), ..Model::default() }
    }
}

/// Runs a model on the reference executor and returns its outputs as tensors by name.
pub fn run(model: &Model, inputs: &[(&str, Tensor)]) -> BTreeMap<String, Tensor> {
    let feeds = inputs.iter().map(|(n, t)| (n.to_string(), Value::Tensor(t.clone()))).collect();
    kiln_reference::run(model, feeds)
        .unwrap()
        .into_iter()
        .filter_map(|(n, v)| match v {
            Value::Tensor(t) => Some((n, t)),
            _ => None,
        })
        .collect()
}

/// Largest |a - b| over two f32 tensors, and the largest |b|.
pub fn max_diff(a: &Tensor, b: &Tensor) -> (f32, f32) {
    let (a, b) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    (d, b.iter().map(|x| x.abs()).fold(0.0, f32::max))
}
