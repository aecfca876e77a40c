//! SmoothQuant (Xiao et al. 2022): before static int8 quantization, per input channel `j` of a
//! MatMul activation `X` (its last axis), `s_j = max|X_j|^alpha / max|W_j,:|^(1 - alpha)`;
//! `X' = X / s` and `W' = diag(s) W`, so `X' W' = X W` while activation outliers move into the
//! weights, which per-channel int8 handles well.
//!
//! The flow, driven by the caller (the pipeline), on the float graph before `quantize`:
//! 1. [`plan_smoothing`] finds the groups: an activation all of whose readers are MatMuls with
//!    a constant 2-D B (or Gemm with a constant B), produced by a node that absorbs `1/s` for
//!    free (LayerNormalization, `Mul(y, gamma)` [`-> Add(., beta)`], MatMul / Gemm [`-> Add`]
//!    with constant weights); everything else is skipped with the reason. With
//!    [`SmoothOptions::insert_mul`] an unfoldable group gets an explicit `Mul(x, 1/s)` instead;
//! 2. [`SmoothPlan::observation`] + [`crate::with_observed_outputs`] give the model to run per
//!    calibration sample; a [`ChannelMaxCollector`] keeps one `max|x|` per channel per value
//!    (memory independent of the number of samples);
//! 3. [`smooth`] rewrites the float graph (new constants; shared ones are never mutated). The
//!    result computes the same function up to float rounding; the usual int8 calibration and
//!    `quantize` then run on it.

mod collect;
mod plan;
mod rewrite;
mod summary;
mod tensor;

pub use collect::{ChannelMaxCollector, ChannelStats};
pub use plan::{Fold, SmoothGroup, SmoothPlan, plan_smoothing};
pub use rewrite::smooth;
pub use summary::{SMOOTH_METADATA_KEY, SkippedNode, SmoothSummary, SmoothedGroup};

use serde::{Deserialize, Serialize};

/// How to smooth (missing fields take the defaults when deserialised).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmoothOptions {
    /// Migration strength in `[0, 1]`: 0 leaves the activations alone, 1 moves all of their
    /// range into the weights. 0.5 by default (the paper's choice for most models).
    pub alpha: f32,
    /// Consumer node names left unsmoothed (their activation's group is skipped).
    pub exclude_nodes: Vec<String>,
    /// Consumer op types left unsmoothed (`"MatMul"`, `"Gemm"`).
    pub exclude_ops: Vec<String>,
    /// Where no producer can absorb `1/s` (a GELU output, an activation also read by a residual
    /// Add), insert `Mul(x, 1/s)` before the MatMuls instead of skipping: one elementwise op
    /// per group at run time. Off by default.
    pub insert_mul: bool,
}

impl Default for SmoothOptions {
    fn default() -> Self {
        SmoothOptions { alpha: 0.5, exclude_nodes: Vec::new(), exclude_ops: Vec::new(), insert_mul: false }
    }
}
