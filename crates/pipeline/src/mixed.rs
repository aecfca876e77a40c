//! Accuracy-aware mixed precision: with a budget on a metric of the model's first float output
//! (against f32's outputs, or a task metric against labels),
//! each quantized layer's sensitivity is measured (that layer alone in int8, the rest f32), and
//! the most harmful layers are kept in f32, one at a time in order of harm, until the whole
//! int8 graph meets the budget. Every layer's precision and the reason are reported.
//!
//! Runs on the CPU target with default kernels (accuracy does not depend on tuning), on the
//! evaluation samples (`--eval-data`), else the calibration samples (up to [`EVAL_SAMPLES`]),
//! else one synthetic input.

use crate::quantize::Recipe;
use crate::{PipelineError, QUANTIZE_AFTER};
use kiln_ir::Model;
use kiln_tensor::Tensor;

/// Samples the metric is measured on.
pub const EVAL_SAMPLES: usize = 8;

/// The metric and how far int8 may fall from f32 on it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Budget {
    /// Mean cosine similarity of the first output to f32's may fall at most this far below 1.
    Cosine(f64),
    /// Top-1 agreement (argmax over the last axis) with f32 may fall at most this many
    /// percentage points below 100.
    Top1(f64),
    /// Task metric: top-1 accuracy against labels (one class id per row of the evaluation
    /// samples' first output) may fall at most this many percentage points below f32's.
    Accuracy(f64),
}

impl Budget {
    /// `cosine=0.01`, `top1=0.5` or `accuracy=0.5`.
    pub fn parse(s: &str) -> Result<Budget, String> {
        let (k, v) = s.split_once('=').ok_or_else(|| format!("'{s}': write METRIC=DROP, e.g. cosine=0.01, top1=0.5 or accuracy=0.5"))?;
        let v: f64 = v.trim().parse().map_err(|_| format!("'{s}': {v} is not a number"))?;
        if v.is_nan() || v < 0.0 {
            return Err(format!("'{s}': the drop must be >= 0"));
        }
        match k.trim() {
            "cosine" => Ok(Budget::Cosine(v)),
            "top1" => Ok(Budget::Top1(v)),
            "accuracy" => Ok(Budget::Accuracy(v)),
            other => Err(format!("'{s}': metric {other} is not cosine, top1 or accuracy")),
        }
    }

    fn allowed(&self) -> f64 {
        match self {
            Budget::Cosine(d) | Budget::Top1(d) | Budget::Accuracy(d) => *d,
        }
    }

    /// Whether the metric needs labels.
    pub fn needs_labels(&self) -> bool {
        matches!(self, Budget::Accuracy(_))
    }
}

/// One layer's outcome.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerPrecision {
    pub node: String,
    pub op: String,
    /// The metric's drop with this layer alone in int8, measured.
    pub sensitivity: f64,
    pub precision: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MixedReport {
    pub budget: Budget,
    pub samples: usize,
    /// The f32 model's top-1 accuracy against the labels, in percent (task metric only).
    pub f32_accuracy: Option<f64>,
    /// The drop with every layer quantized, and with the chosen layers kept f32, measured.
    pub drop_all_quantized: f64,
    pub drop_final: f64,
    pub met: bool,
    pub layers: Vec<LayerPrecision>,
}

/// Chooses the layers to keep in f32 (returned, in order of harm) and reports every layer.
pub fn choose(
    base: &Model,
    recipe: &Recipe,
    budget: Budget,
    samples: &[Vec<(String, Tensor)>],
    labels: Option<&[i64]>,
) -> Result<(Vec<String>, MixedReport), PipelineError> {
    let precision = recipe.precision();
    let reference = outputs(base, samples)?;
    let f32_accuracy = match (budget, labels) {
        (Budget::Accuracy(_), Some(l)) => Some(accuracy(&reference, l)?),
        (Budget::Accuracy(_), None) => {
            return Err(PipelineError::Calibration(
                "an accuracy budget needs labels (--labels FILE.npy: one class id per evaluated row)".into(),
            ));
        }
        _ => None,
    };
    let layers = recipe.apply(base)?.1.layers();
    let measure = |r: &Recipe| -> Result<f64, PipelineError> {
        let (q, _) = r.apply(base)?;
        let got = outputs(&q, samples)?;
        Ok(match (budget, labels, f32_accuracy) {
            (Budget::Cosine(_), _, _) => 1.0 - mean_cosine(&reference, &got),
            (Budget::Top1(_), _, _) => 100.0 - agreement(&reference, &got),
            (Budget::Accuracy(_), Some(l), Some(f)) => f - accuracy(&got, l)?,
            (Budget::Accuracy(_), _, _) => f64::NAN,
        })
    };
    let drop_all = measure(recipe)?;
    let mut sens = Vec::with_capacity(layers.len());
    for (node, _) in &layers {
        let others: Vec<String> = layers.iter().filter(|(n, _)| n != node).map(|(n, _)| n.clone()).collect();
        sens.push(measure(&recipe.without(&others))?);
    }
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by(|&a, &b| sens[b].total_cmp(&sens[a]));
    let mut kept: Vec<String> = Vec::new();
    let mut drop = drop_all;
    let mut kept_f32 = Vec::new();
    for &i in &order {
        if drop <= budget.allowed() {
            break;
        }
        kept.push(layers[i].0.clone());
        kept_f32.push(i);
        drop = measure(&recipe.without(&kept))?;
    }
    let report_layers = layers
        .iter()
        .zip(&sens)
        .enumerate()
        .map(|(i, ((node, op), &s))| {
            let (precision, reason) = match kept_f32.iter().position(|&k| k == i) {
                Some(rank) => (
                    "f32",
                    format!(
                        "kept in f32 to meet the budget: harm rank {} of {} (drop {s:.3e} alone in {precision})",
                        rank + 1,
                        layers.len()
                    ),
                ),
                None => (precision, format!("drop {s:.3e} alone in {precision}; the budget holds with it in {precision}")),
            };
            LayerPrecision { node: node.clone(), op: op.clone(), sensitivity: s, precision, reason }
        })
        .collect();
    let report = MixedReport {
        budget,
        samples: samples.len(),
        f32_accuracy,
        drop_all_quantized: drop_all,
        drop_final: drop,
        met: drop <= budget.allowed(),
        layers: report_layers,
    };
    Ok((kept, report))
}

/// The first output of `model` (optimized up to QUANTIZE_AFTER, f32 or QDQ) on each sample,
/// through the rest of the passes on the CPU target, default kernels.
fn outputs(model: &Model, samples: &[Vec<(String, Tensor)>]) -> Result<Vec<Tensor>, PipelineError> {
    let mut m = model.clone();
    kiln_passes::optimize(&mut m, &kiln_passes::pipeline_after(QUANTIZE_AFTER)?)?;
    // The first float output (a classifier's probabilities, not its label).
    let g = &m.graph;
    let pick = g.outputs.iter().find(|&&v| g.value(v).dtype == Some(kiln_tensor::DType::F32)).or(g.outputs.first());
    let first = pick.map(|&v| g.value(v).name.clone()).unwrap_or_default();
    let mut exe = crate::quantize::cpu_executable(&m)?;
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let o = exe.run(s.clone())?;
        let t = o.into_iter().find(|(n, _)| *n == first).map(|(_, t)| t);
        out.push(t.ok_or_else(|| PipelineError::Calibration(format!("the model gave no output '{first}'")))?);
    }
    Ok(out)
}

/// Mean cosine of `got` to `want` over the samples.
fn mean_cosine(want: &[Tensor], got: &[Tensor]) -> f64 {
    let c: Vec<f64> = want.iter().zip(got).map(|(w, g)| cosine(&floats(w), &floats(g))).collect();
    c.iter().sum::<f64>() / c.len().max(1) as f64
}

/// Top-1 agreement of `got` with `want` (argmax over the last axis of each row), in percent.
fn agreement(want: &[Tensor], got: &[Tensor]) -> f64 {
    let (w, g) = (top1(want), top1(got));
    100.0 * w.iter().zip(&g).filter(|(a, b)| a == b).count() as f64 / w.len().max(1) as f64
}

/// Top-1 accuracy of `got` against one label per row, in percent.
fn accuracy(got: &[Tensor], labels: &[i64]) -> Result<f64, PipelineError> {
    let predicted = top1(got);
    if predicted.len() != labels.len() {
        return Err(PipelineError::Calibration(format!(
            "the labels hold {} class ids but the evaluation samples give {} rows (one label per row of the first output, samples in file order)",
            labels.len(),
            predicted.len()
        )));
    }
    let right = predicted.iter().zip(labels).filter(|(p, l)| i64::try_from(**p).ok() == Some(**l)).count();
    Ok(100.0 * right as f64 / labels.len().max(1) as f64)
}

/// The argmax over the last axis of every row of every sample's output.
fn top1(outs: &[Tensor]) -> Vec<usize> {
    let mut v = Vec::new();
    for t in outs {
        let cols = t.shape().last().copied().unwrap_or(1).max(1);
        v.extend(floats(t).chunks(cols).map(argmax));
    }
    v
}

fn floats(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec().unwrap_or_default()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let d = n(a) * n(b);
    if d == 0.0 { if n(a) == n(b) { 1.0 } else { 0.0 } } else { dot / d }
}

fn argmax(v: &[f64]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn budgets_parse() {
        assert_eq!(Budget::parse("cosine=0.01"), Ok(Budget::Cosine(0.01)));
        assert_eq!(Budget::parse("top1=0.5"), Ok(Budget::Top1(0.5)));
        assert_eq!(Budget::parse("accuracy=1"), Ok(Budget::Accuracy(1.0)));
        assert!(Budget::parse("cosine").is_err());
        assert!(Budget::parse("f1=0.1").is_err());
        assert!(Budget::parse("top1=-1").is_err());
    }
}
