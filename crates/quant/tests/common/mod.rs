//! Shared test helpers: a deterministic random source, small graph building, reference runs.
#![allow(dead_code, clippy::unwrap_used)]

use kiln_ir::{Attr, Graph, Model, Node, ValueId, ValueInfo};
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

fn shape(dims: &[&str]) -> Shape {
    Shape(dims.iter().map(|d| d.parse().map_or_else(|_| Dim::Sym(d.to_string()), Dim::Known)).collect())
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
        let v = self.g.add_value(name, Some(DType::F32), Some(shape(dims)));
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
    /// A graph output, typed f32 of `dims` (`"N"` symbolic).
    pub fn output(&mut self, v: ValueId, dims: &[&str]) {
        *self.g.value_mut(v) = ValueInfo { name: self.g.value(v).name.clone(), dtype: Some(DType::F32), shape: Some(shape(dims)) };
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

/// Exports `model` and runs it in onnxruntime through testdata/onnx_check.py (onnx.checker's
/// full check first). None, with a note, when the test venv is missing.
pub fn ort_run(model: &Model, feeds: &[(&str, Tensor)]) -> Option<BTreeMap<String, Tensor>> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("testdata/cache/venv/bin/python");
    if !python.is_file() {
        eprintln!("skipped: {} missing (ci/test.sh makes it)", python.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, input, out) = (dir.path().join("model.onnx"), dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir(&input).unwrap();
    std::fs::create_dir(&out).unwrap();
    for (name, t) in feeds {
        std::fs::write(input.join(format!("input_{name}.npy")), kiln_tensor::npy::write(t).unwrap()).unwrap();
    }
    kiln_onnx::export(model, &path, &kiln_onnx::ExportOptions::default()).unwrap();
    let o = std::process::Command::new(&python)
        .arg(root.join("testdata/onnx_check.py"))
        .arg(&path)
        .arg("--feeds")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    let g = &model.graph;
    let read = |name: &str| kiln_tensor::npy::read(&std::fs::read(out.join(format!("output_{name}.npy"))).unwrap()).unwrap();
    Some(g.outputs.iter().map(|&v| (g.value(v).name.clone(), read(&g.value(v).name))).collect())
}

/// Calibration over the samples of `dir`, run on the reference executor.
pub fn reference_calibrate(
    model: &Model,
    opts: &kiln_quant::QuantOptions,
    method: kiln_quant::CalibMethod,
    dir: &std::path::Path,
) -> kiln_quant::Ranges {
    let set = kiln_quant::CalibrationSet::from_dir(dir, model).unwrap();
    kiln_quant::calibrate(model, opts, method, &set, |m, inputs| {
        let feeds = inputs.into_iter().map(|(n, t)| (n, Value::Tensor(t))).collect();
        Ok(kiln_reference::run(m, feeds)?.into_iter().filter_map(|(n, v)| v.into_tensor().map(|t| (n, t))).collect())
    })
    .unwrap()
}
