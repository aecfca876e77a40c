//! Shape arithmetic kept between runs. ONNX exports of transformers recompute, every run, a
//! chain of small integer steps from the inputs' shapes (`Shape`, `Gather`, `Unsqueeze`,
//! `Concat`, `Equal`, `Where`, ...): 28 of MiniLM-L3's 73 steps, about 0.15 ms a run on the
//! reference kernels. A step qualifies when its op is deterministic and listed here, and it
//! reads either only a shape (`Shape`, `Size`) or only constants and the outputs of
//! qualifying steps. It is skipped when what it reads is what it read last time (the shape,
//! or the same integer tensors, compared in full): its last outputs are reused. Float inputs,
//! and tensors over [`MAX_ELEMS`] elements, are never kept, so a hit is always exact.

use kiln_target::Plan;
use kiln_tensor::{DType, Tensor};

/// Ops whose output is a function of their inputs alone.
const OPS: &[&str] = &[
    "Shape",
    "Size",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Slice",
    "Equal",
    "Less",
    "Greater",
    "Not",
    "And",
    "Or",
    "Where",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Mod",
    "Neg",
    "Abs",
    "Min",
    "Max",
    "Cast",
    "ConstantOfShape",
    "Range",
    "Reshape",
    "Expand",
    "Identity",
    "ReduceProd",
    "ReduceSum",
];

/// Larger tensors are not kept (shape arithmetic stays far below).
pub const MAX_ELEMS: usize = 4096;

/// What a kept step read.
#[derive(PartialEq)]
enum Key {
    Shape(Vec<usize>),
    Values(Vec<Option<Tensor>>),
}

pub struct ShapeMemo {
    /// Per step: it qualifies.
    pure: Vec<bool>,
    /// Per step: what it read and wrote last time.
    kept: Vec<Option<(Key, Vec<Tensor>)>>,
    /// Steps skipped since load (for tests and profiles).
    pub hits: u64,
}

fn small_int(t: &Tensor) -> bool {
    t.len() <= MAX_ELEMS && !matches!(t.dtype(), DType::F32 | DType::F64 | DType::F16 | DType::BF16 | DType::String)
}

impl ShapeMemo {
    pub fn new(plan: &Plan) -> ShapeMemo {
        let mut derived: Vec<bool> = plan.values.iter().map(|v| v.weight.is_some()).collect();
        let mut pure = Vec::with_capacity(plan.steps.len());
        for s in &plan.steps {
            let listed = s.domain.is_empty() && OPS.contains(&s.op.as_str());
            let reads_shape = matches!(s.op.as_str(), "Shape" | "Size");
            let p = listed && (reads_shape || s.inputs.iter().flatten().all(|&v| derived.get(v).copied().unwrap_or(false)));
            if p {
                for &o in s.outputs.iter().flatten() {
                    if let Some(d) = derived.get_mut(o) {
                        *d = true;
                    }
                }
            }
            pure.push(p);
        }
        ShapeMemo { kept: (0..pure.len()).map(|_| None).collect(), pure, hits: 0 }
    }

    /// What step `i` reads now, when it may be kept.
    fn key(&self, i: usize, op: &str, ins: &[Option<&Tensor>]) -> Option<Key> {
        if !self.pure.get(i).copied().unwrap_or(false) {
            return None;
        }
        if matches!(op, "Shape" | "Size") {
            return ins.first().copied().flatten().map(|t| Key::Shape(t.shape().to_vec()));
        }
        ins.iter().all(|t| t.is_none_or(small_int)).then(|| Key::Values(ins.iter().map(|t| t.cloned()).collect()))
    }

    /// Step `i`'s outputs from its last run, when it read the same; else the key to keep
    /// them under after it runs.
    pub fn lookup(&mut self, i: usize, op: &str, ins: &[Option<&Tensor>]) -> Result<Vec<Tensor>, Option<KeyToKeep>> {
        let Some(key) = self.key(i, op, ins) else { return Err(None) };
        match &self.kept[i] {
            Some((k, outs)) if *k == key => {
                self.hits += 1;
                Ok(outs.clone())
            }
            _ => Err(Some(KeyToKeep(key))),
        }
    }

    /// Keeps step `i`'s outputs (when small) under `key`.
    pub fn keep(&mut self, i: usize, key: KeyToKeep, outs: &[Tensor]) {
        self.kept[i] = outs.iter().all(small_int).then(|| (key.0, outs.to_vec()));
    }
}

/// A step's key, carried from [`ShapeMemo::lookup`] to [`ShapeMemo::keep`].
pub struct KeyToKeep(Key);
