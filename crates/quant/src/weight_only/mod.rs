//! Weight-only quantization: MatMul / Gemm weights stored in fp16, bf16, or int4 / int8
//! group-wise (round-to-nearest or GPTQ), activations left in float.
//!
//! The flow, driven by the caller (the pipeline), as for int8:
//! 1. [`plan_weight_only`] lists the selected nodes' activation inputs (GPTQ needs their
//!    `X^T X`); [`crate::with_observed_outputs`] gives a model that also outputs them;
//! 2. GPTQ only: the caller runs it one calibration sample at a time and feeds a
//!    [`HessianCollector`] (memory `K * K` per value, whatever the sample count);
//! 3. [`quantize_weight_only`] rewrites the graph into plain ai.onnx (see `rewrite.rs`):
//!    `Cast(W_f16|W_bf16 -> float)` or `DequantizeLinear(W_q, scale, zero_point)` feeding a
//!    MatMul's B, which the `fuse-lowp` pass turns into `kiln::WMatMul`.

mod gptq;
mod grid;
mod hessian;
mod linalg;
mod matrix;
mod rewrite;
mod summary;

pub use hessian::{Hessian, HessianCollector, Hessians};
pub use summary::{ProxyError, WEIGHT_ONLY_METADATA_KEY, WeightOnlyNode, WeightOnlySummary};

use crate::select::Selection;
use crate::{Excluded, Observation, QDType, QuantError, QuantOptions};
use kiln_ir::{Graph, Model};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    F16,
    BF16,
    Int4,
    Int8,
}

impl WeightFormat {
    pub fn is_int(self) -> bool {
        matches!(self, WeightFormat::Int4 | WeightFormat::Int8)
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightFormat::F16 => "f16",
            WeightFormat::BF16 => "bf16",
            WeightFormat::Int4 => "int4",
            WeightFormat::Int8 => "int8",
        })
    }
}

/// How integer weights are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rounding {
    /// Round-to-nearest, each value on its own.
    Rtn,
    /// GPTQ: errors compensated through the inverse Hessian of the calibration activations.
    Gptq,
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rounding::Rtn => "rtn",
            Rounding::Gptq => "gptq",
        })
    }
}

/// What to store and how (missing fields take the defaults when deserialised).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightOnlyOptions {
    pub format: WeightFormat,
    /// int4/int8: rows of K per scale; 0 = one scale per column.
    pub group_size: usize,
    /// int4/int8: true -> INT4/INT8, no zero point; false -> UINT4/UINT8 with zero points.
    pub symmetric: bool,
    /// int4/int8 rounding; GPTQ needs Hessians.
    pub method: Rounding,
    /// BF16 only: the activation is rounded to bf16 too (a target computing bf16 x bf16).
    pub compute_bf16: bool,
    /// GPTQ dampening, a fraction of mean(diag(H)). 0.1 by default: with a few hundred
    /// calibration rows H is rank-deficient and the paper's 0.01 over-fits them (measured on
    /// MiniLM-L6, tests/gptq.rs: 0.01 lost to round-to-nearest on one layer, 0.1 beat it on all).
    pub damp: f32,
    /// Node names kept in float.
    pub exclude_nodes: Vec<String>,
    /// Op types kept in float (`"Gemm"`, `"MatMul"`).
    pub exclude_ops: Vec<String>,
}

impl Default for WeightOnlyOptions {
    fn default() -> Self {
        WeightOnlyOptions {
            format: WeightFormat::Int4,
            group_size: 32,
            symmetric: false,
            method: Rounding::Rtn,
            compute_bf16: false,
            damp: 0.1,
            exclude_nodes: Vec::new(),
            exclude_ops: Vec::new(),
        }
    }
}

/// The nodes to rewrite (ai.onnx MatMul with a constant 2-D B, Gemm with a constant B and
/// an untransposed A) and the MatMul / Gemm / Conv left alone, with the reason.
fn select(model: &Model, opts: &WeightOnlyOptions) -> Selection {
    let int8 = QuantOptions { activation: QDType::U8, exclude_nodes: opts.exclude_nodes.clone(), exclude_ops: opts.exclude_ops.clone() };
    let sel = crate::select::select(model, &int8);
    let g: &Graph = &model.graph;
    let mut excluded = sel.excluded;
    let mut chosen = Vec::new();
    for c in sel.candidates {
        let n = &g.nodes[c.node.0];
        let reason = match n.op_type.as_str() {
            "Conv" => Some("Conv is out of scope for weight-only quantization (MatMul and Gemm only)"),
            "Gemm" if n.attr_int("transA").unwrap_or(0) != 0 => {
                Some("Gemm with transA=1 is left alone (only an untransposed A is rewritten)")
            }
            _ if g.initializers[&c.weight].shape().contains(&0) => Some("the weight is empty"),
            _ => None,
        };
        match reason {
            Some(r) => excluded.push(Excluded { node: n.label(), op: n.op_type.clone(), reason: r.into() }),
            None => chosen.push(c),
        }
    }
    Selection { candidates: chosen, excluded }
}

/// The values whose `X^T X` GPTQ needs (the selected nodes' activation inputs, first-use
/// order, each once), and the nodes that will be left alone.
pub fn plan_weight_only(model: &Model, opts: &WeightOnlyOptions) -> Observation {
    let sel = select(model, opts);
    Observation { values: sel.observed(&model.graph), excluded: sel.excluded }
}

/// Rewrites `model` with low-precision weights. `hessians` (from a [`HessianCollector`] over
/// [`plan_weight_only`]'s values) is needed for [`Rounding::Gptq`] with an integer format.
pub fn quantize_weight_only(
    model: Model,
    opts: &WeightOnlyOptions,
    hessians: Option<&Hessians>,
) -> Result<(Model, WeightOnlySummary), QuantError> {
    let sel = select(&model, opts);
    rewrite::rewrite(model, opts, sel, hessians)
}
