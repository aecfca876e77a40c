//! What quantization did, per node: serialisable for the report, printable for the CLI.

use crate::{CalibMethod, QDType, QParams};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A MatMul / Gemm / Conv left in float, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    pub node: String,
    pub op: String,
    pub reason: String,
}

/// How a node's weights were quantized: always int8, symmetric, one scale per output channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightScheme {
    /// The float initializer's name.
    pub name: String,
    pub dtype: QDType,
    /// The axis of output channels in the stored weight.
    pub axis: usize,
    pub channels: usize,
    pub scale_min: f32,
    pub scale_max: f32,
    /// Gemm's alpha folded into the weights, when it was not 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded_alpha: Option<f32>,
}

/// How a node's activation input is quantized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum ActivationScheme {
    /// QuantizeLinear/DequantizeLinear with calibrated constants.
    Static { value: String, method: CalibMethod, lo: f32, hi: f32, params: QParams },
    /// DynamicQuantizeLinear: u8 scale and zero point computed per run.
    Dynamic { value: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizedNode {
    pub node: String,
    pub op: String,
    pub weight: WeightScheme,
    pub activation: ActivationScheme,
}

/// The whole rewrite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantSummary {
    /// No calibration data was given: every activation is quantized dynamically at run time.
    pub data_free: bool,
    /// Static activations' integer type (dynamic ones are always u8).
    pub activation_dtype: QDType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// The ai.onnx opset before and after (raised to 13 for per-channel DequantizeLinear).
    pub opset_from: i64,
    pub opset_to: i64,
    pub nodes: Vec<QuantizedNode>,
    pub excluded: Vec<Excluded>,
    /// Initializer bytes before and after.
    pub weight_bytes_before: usize,
    pub weight_bytes_after: usize,
}

fn kib(b: usize) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

/// The model metadata key under which [`crate::quantize`] records [`QuantSummary::headline`].
pub const METADATA_KEY: &str = "kiln.quantization";

impl QuantSummary {
    /// One line saying how activations were quantized; data-free says so in capitals.
    pub fn headline(&self) -> String {
        if self.data_free {
            return "int8 DATA-FREE: no calibration data was given; activations are quantized dynamically at run time (DynamicQuantizeLinear, u8)".into();
        }
        let how = self.calibration.map_or("?".to_string(), |m| m.to_string());
        let asym = if self.activation_dtype == QDType::U8 { "asymmetric" } else { "symmetric" };
        let samples = self.samples.unwrap_or(0);
        format!("int8 static: {} {asym} activations, calibrated by {how} over {samples} samples", self.activation_dtype)
    }
}

impl fmt::Display for QuantSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        writeln!(
            f,
            "quantized {} nodes, {} left in float; weights {} -> {}",
            self.nodes.len(),
            self.excluded.len(),
            kib(self.weight_bytes_before),
            kib(self.weight_bytes_after)
        )?;
        if self.opset_from != self.opset_to {
            writeln!(f, "ai.onnx opset raised from {} to {}", self.opset_from, self.opset_to)?;
        }
        for n in &self.nodes {
            let w = &n.weight;
            let act = match &n.activation {
                ActivationScheme::Static { value, lo, hi, params, .. } => {
                    format!("{value} static [{lo:.4}, {hi:.4}] scale {:.6} zp {} {}", params.scale, params.zero_point, params.dtype)
                }
                ActivationScheme::Dynamic { value } => format!("{value} dynamic u8"),
            };
            writeln!(
                f,
                "  {:<8} {:<24} weights {} per-channel axis {} ({} ch){}  activation {act}",
                n.op,
                n.node,
                w.dtype,
                w.axis,
                w.channels,
                w.folded_alpha.map_or(String::new(), |a| format!(", alpha {a} folded"))
            )?;
        }
        for e in &self.excluded {
            writeln!(f, "  {:<8} {:<24} float: {}", e.op, e.node, e.reason)?;
        }
        Ok(())
    }
}
