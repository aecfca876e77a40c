//! Weight rebinding: the initializers of a graph replaced, by name, with a checkpoint's tensors
//! (fine-tuned weights onto a known graph).

use crate::HfError;
use kiln_ir::Model;
use kiln_safetensors::{Checkpoint, StDType};
use kiln_tensor::DType;

/// What a rebind did. Only `matched` (and `converted`) initializers changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RebindReport {
    /// Initializers replaced.
    pub matched: Vec<String>,
    /// Of `matched`: replaced after a float conversion (name, checkpoint dtype, graph dtype).
    pub converted: Vec<(String, DType, DType)>,
    /// Checkpoint tensors the graph has no initializer for.
    pub unmatched: Vec<String>,
    /// Graph initializers the checkpoint does not have (left as they were).
    pub not_in_checkpoint: Vec<String>,
    /// Same name, different shape (left as they were): (name, graph shape, checkpoint shape).
    pub shape_mismatch: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Same name and shape, element types that do not convert (left as they were).
    pub dtype_mismatch: Vec<(String, DType, String)>,
}

impl RebindReport {
    /// One line: counts of each outcome.
    pub fn summary(&self) -> String {
        format!(
            "{} matched ({} converted), {} shape-mismatched, {} dtype-mismatched, {} checkpoint tensors unmatched, {} graph initializers not in the checkpoint",
            self.matched.len(),
            self.converted.len(),
            self.shape_mismatch.len(),
            self.dtype_mismatch.len(),
            self.unmatched.len(),
            self.not_in_checkpoint.len()
        )
    }
}

/// Replaces the main graph's initializers whose names are in `ck` and whose shapes agree.
/// A float tensor of another float type (f16/bf16 checkpoint, f32 graph) is converted.
pub fn rebind(model: &mut Model, ck: &Checkpoint) -> Result<RebindReport, HfError> {
    let mut report = RebindReport::default();
    let g = &mut model.graph;
    let mut seen = std::collections::HashSet::new();
    for (&v, t) in g.initializers.iter_mut() {
        let name = g.values[v.0].name.clone();
        let Some(info) = ck.info(&name) else {
            report.not_in_checkpoint.push(name);
            continue;
        };
        seen.insert(name.clone());
        let shape: Vec<usize> = info.shape.iter().map(|&d| d as usize).collect();
        if shape != t.shape() {
            report.shape_mismatch.push((name, t.shape().to_vec(), shape));
            continue;
        }
        let want = t.dtype();
        let ck_dtype = info.dtype.to_kiln();
        let new = if ck_dtype == Some(want) {
            ck.tensor(&name)?
        } else if want.is_float() && (ck_dtype.is_some_and(DType::is_float) || matches!(info.dtype, StDType::F8E4M3 | StDType::F8E5M2)) {
            let wide = ck.tensor_f32(&name)?;
            let new = if want == DType::F32 {
                wide
            } else {
                wide.cast(want).map_err(|source| kiln_safetensors::SafetensorsError::Tensor { name: name.clone(), source })?
            };
            report.converted.push((name.clone(), ck_dtype.unwrap_or(DType::F32), want));
            new
        } else {
            report.dtype_mismatch.push((name, want, info.dtype.to_string()));
            continue;
        };
        *t = new;
        report.matched.push(name);
    }
    report.unmatched = ck.names().filter(|n| !seen.contains(*n)).map(str::to_string).collect();
    Ok(report)
}
