//! What weight-only quantization did, per node: serialisable for the report, printable for the CLI.

use super::{Rounding, WeightFormat};
use crate::Excluded;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The model metadata key under which [`crate::quantize_weight_only`] records
/// [`WeightOnlySummary::headline`].
pub const WEIGHT_ONLY_METADATA_KEY: &str = "kiln.weight_only";

/// GPTQ's proxy error `tr((W - Q)^T H (W - Q))` for this layer, and round-to-nearest's on
/// the same H: what GPTQ gained.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyError {
    pub rtn: f64,
    pub gptq: f64,
    /// The dampening used (a fraction of mean(diag(H))), raised from the option on retries.
    pub damp: f64,
}

/// One rewritten MatMul / Gemm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightOnlyNode {
    pub node: String,
    pub op: String,
    /// The float initializer's name.
    pub weight: String,
    pub format: WeightFormat,
    /// The stored weight is `[k, n]` (Gemm's transB undone).
    pub k: usize,
    pub n: usize,
    /// Integer formats: rows of K per scale (0: one scale per column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// Integer formats: how the values were rounded (round-to-nearest after a GPTQ fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Rounding>,
    /// Bytes of the float weight, and of what replaces it (values, scales, zero points).
    pub bytes_before: usize,
    pub bytes_after: usize,
    /// Gemm's alpha folded into the weights, when it was not 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded_alpha: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_error: Option<ProxyError>,
    /// Anything the reader should know (a GPTQ fallback to round-to-nearest and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The whole rewrite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightOnlySummary {
    pub format: WeightFormat,
    pub group_size: usize,
    pub symmetric: bool,
    /// The rounding asked for (per node: [`WeightOnlyNode::method`]).
    pub method: Rounding,
    pub compute_bf16: bool,
    /// Calibration samples behind the Hessians (GPTQ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// The ai.onnx opset and IR version before and after (21 and 10 for blocked or 4-bit).
    pub opset_from: i64,
    pub opset_to: i64,
    pub ir_version_from: i64,
    pub ir_version_to: i64,
    pub nodes: Vec<WeightOnlyNode>,
    pub excluded: Vec<Excluded>,
    /// Initializer bytes of the whole model before and after.
    pub weight_bytes_before: usize,
    pub weight_bytes_after: usize,
}

fn kib(b: usize) -> String {
    if b < 1024 { format!("{b} B") } else { format!("{:.1} KiB", b as f64 / 1024.0) }
}

impl WeightOnlySummary {
    /// One line saying what the weights became.
    pub fn headline(&self) -> String {
        match self.format {
            WeightFormat::F16 => "f16 weight-only: weights stored as f16, cast to f32 at run time".into(),
            WeightFormat::BF16 if self.compute_bf16 => {
                "bf16 weight-only: weights stored as bf16, activations rounded to bf16 (bf16 x bf16 products, f32 sums)".into()
            }
            WeightFormat::BF16 => "bf16 weight-only: weights stored as bf16, cast to f32 at run time".into(),
            WeightFormat::Int4 | WeightFormat::Int8 => {
                let groups = if self.group_size == 0 {
                    "one scale per column".to_string()
                } else {
                    format!("groups of {} along K", self.group_size)
                };
                let sym = if self.symmetric { "symmetric" } else { "asymmetric (zero points)" };
                let method = match (self.method, self.samples) {
                    (Rounding::Gptq, Some(s)) => format!("GPTQ over {s} calibration samples"),
                    (Rounding::Gptq, None) => "GPTQ".into(),
                    (Rounding::Rtn, _) => "round-to-nearest".into(),
                };
                format!("{} weight-only: {groups}, {sym}, {method}", self.format)
            }
        }
    }

    /// Sum of the per-node proxy errors (round-to-nearest, GPTQ), when GPTQ ran.
    pub fn proxy_totals(&self) -> Option<(f64, f64)> {
        let errs: Vec<&ProxyError> = self.nodes.iter().filter_map(|n| n.proxy_error.as_ref()).collect();
        (!errs.is_empty()).then(|| (errs.iter().map(|e| e.rtn).sum(), errs.iter().map(|e| e.gptq).sum()))
    }
}

impl fmt::Display for WeightOnlySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (nodes, left) = (self.nodes.len(), self.excluded.len());
        let (before, after) = (kib(self.weight_bytes_before), kib(self.weight_bytes_after));
        writeln!(f, "{}\nrewrote {nodes} nodes, {left} left alone; weights {before} -> {after}", self.headline())?;
        for (what, from, to) in
            [("ai.onnx opset", self.opset_from, self.opset_to), ("IR version", self.ir_version_from, self.ir_version_to)]
        {
            if from != to {
                writeln!(f, "{what} raised from {from} to {to}")?;
            }
        }
        if let Some((rtn, gptq)) = self.proxy_totals() {
            writeln!(f, "proxy error tr((W-Q)^T H (W-Q)), all layers: round-to-nearest {rtn:.4e}, GPTQ {gptq:.4e}")?;
        }
        for n in &self.nodes {
            let how = match (n.group_size, n.method) {
                (Some(0), Some(m)) => format!("{} per column {m}", n.format),
                (Some(g), Some(m)) => format!("{} g{g} {m}", n.format),
                _ => n.format.to_string(),
            };
            write!(f, "  {:<8} {:<24} [{}x{}] {how:<14} {} -> {}", n.op, n.node, n.k, n.n, kib(n.bytes_before), kib(n.bytes_after))?;
            if let Some(a) = n.folded_alpha {
                write!(f, ", alpha {a} folded")?;
            }
            if let Some(e) = n.proxy_error {
                write!(f, ", proxy error rtn {:.4e} gptq {:.4e}", e.rtn, e.gptq)?;
            }
            if let Some(note) = &n.note {
                write!(f, " ({note})")?;
            }
            writeln!(f)?;
        }
        for e in &self.excluded {
            writeln!(f, "  {:<8} {:<24} float: {}", e.op, e.node, e.reason)?;
        }
        Ok(())
    }
}
