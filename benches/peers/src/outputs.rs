//! Outputs as plain f64 vectors, and how far two engines' outputs are apart.

use kiln_tensor::Tensor;

pub struct Output {
    pub name: String,
    pub shape: Vec<usize>,
    pub float: bool,
    pub values: Vec<f64>,
}

impl Output {
    pub fn from_kiln(name: &str, t: &Tensor) -> anyhow::Result<Output> {
        Ok(Output { name: name.to_string(), shape: t.shape().to_vec(), float: t.dtype().is_float(), values: t.to_f64_vec()? })
    }
}

/// How far `got` is from `want` (onnxruntime's), over all outputs: the worst output.
pub enum Agreement {
    /// Largest `max |got - want| / max |want|` over the float outputs, and the output it is on;
    /// integer outputs matched exactly.
    Close { rel: f64, worst: String },
    /// An integer output differs, or shapes/counts differ.
    Mismatch(String),
}

impl Agreement {
    pub fn describe(&self) -> String {
        match self {
            Agreement::Close { rel, worst } if *rel <= TOLERANCE => format!("agrees: max|diff|/max|ort| = {rel:.1e} (worst output '{worst}')"),
            Agreement::Close { rel, worst } => format!("DIFFERS: max|diff|/max|ort| = {rel:.1e} on output '{worst}' (tolerance {TOLERANCE:.0e})"),
            Agreement::Mismatch(why) => format!("DIFFERS: {why}"),
        }
    }
}

/// Relative difference above which a row is flagged.
pub const TOLERANCE: f64 = 1e-3;

pub fn compare(got: &[Output], want: &[Output]) -> Agreement {
    if got.len() != want.len() {
        return Agreement::Mismatch(format!("{} outputs, onnxruntime has {}", got.len(), want.len()));
    }
    let mut worst = (0.0f64, String::new());
    for (g, w) in got.iter().zip(want) {
        if g.shape != w.shape {
            return Agreement::Mismatch(format!("output '{}' has shape {:?}, onnxruntime's '{}' has {:?}", g.name, g.shape, w.name, w.shape));
        }
        if !(g.float && w.float) {
            let bad = g.values.iter().zip(&w.values).filter(|(a, b)| a != b).count();
            if bad > 0 {
                return Agreement::Mismatch(format!("integer output '{}': {bad} of {} values differ", w.name, w.values.len()));
            }
            continue;
        }
        let scale = w.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = g.values.iter().zip(&w.values).fold(0.0f64, |m, (a, b)| if a.is_nan() || b.is_nan() { f64::INFINITY } else { m.max((a - b).abs()) });
        let rel = if scale > 0.0 { diff / scale } else { diff };
        if rel >= worst.0 {
            worst = (rel, w.name.clone());
        }
    }
    Agreement::Close { rel: worst.0, worst: worst.1 }
}
