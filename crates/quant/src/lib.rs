//! Int8 quantization of a float graph into a standard ONNX QDQ graph.
//!
//! The flow, driven by the caller (the pipeline):
//! 1. [`plan_observation`] lists the values to calibrate: the float activation inputs of the
//!    nodes that will be quantized (ai.onnx MatMul with a constant 2-D B, Gemm with a constant
//!    B, Conv with a constant W; [`QuantOptions`] excludes nodes by name or op);
//! 2. [`with_observed_outputs`] gives a model that also outputs them; the caller runs it on
//!    any executor, one [`data::CalibrationSet`] sample at a time, and feeds each observed
//!    tensor to a [`Calibrator`] (MinMax, Percentile or Entropy; memory independent of the
//!    number of samples). [`calibrate`] is that loop, with the executor as a closure;
//! 3. [`quantize`] rewrites the model with the [`Ranges`] (static: QuantizeLinear /
//!    DequantizeLinear with calibrated constants) or without (dynamic: DynamicQuantizeLinear
//!    at run time, the data-free fallback, flagged in the [`QuantSummary`]).
//!
//! Weights are int8, symmetric, one scale per output channel; biases stay float. The crate
//! never runs a model itself.
//!
//! Architecture invariant: knows the IR and tensors; nothing of ONNX protobuf, executors,
//! targets or the CLI. The output is plain ai.onnx that onnxruntime runs.

pub mod calib;
pub mod data;
mod error;
mod observed;
mod params;
mod qdq;
mod select;
mod summary;
mod weights;

pub use calib::{CalibMethod, Calibrator, Observer, Range, Ranges};
pub use data::{CalibrationSet, Sample};
pub use error::{DataError, QuantError};
pub use params::{QDType, QParams};
pub use qdq::MIN_OPSET;
pub use summary::{ActivationScheme, Excluded, METADATA_KEY, QuantSummary, QuantizedNode, WeightScheme};

use kiln_ir::Model;
use kiln_tensor::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// What to quantize and how (missing fields take the defaults when deserialised).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuantOptions {
    /// Static activations: `U8` asymmetric (the default, as onnxruntime) or `I8` symmetric.
    pub activation: QDType,
    /// Node names kept in float.
    pub exclude_nodes: Vec<String>,
    /// Op types kept in float (`"Conv"`, `"Gemm"`, `"MatMul"`).
    pub exclude_ops: Vec<String>,
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions { activation: QDType::U8, exclude_nodes: Vec::new(), exclude_ops: Vec::new() }
    }
}

/// The values to calibrate, and the nodes that will be left in float.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Observed value names, in first-use order.
    pub values: Vec<String>,
    pub excluded: Vec<Excluded>,
}

/// The values [`quantize`] will need ranges for, under these options.
pub fn plan_observation(model: &Model, opts: &QuantOptions) -> Observation {
    let sel = select::select(model, opts);
    Observation { values: sel.observed(&model.graph), excluded: sel.excluded }
}

/// A copy of `model` that also outputs every observed value (typed f32 where untyped), so a
/// run of it yields the tensors a [`Calibrator`] wants. Values already outputs stay once.
pub fn with_observed_outputs(model: &Model, observation: &Observation) -> Model {
    let mut out = model.clone();
    let g = &mut out.graph;
    for name in &observation.values {
        let Some(v) = g.value_by_name(name) else {
            continue;
        };
        let info = g.value_mut(v);
        info.dtype.get_or_insert(DType::F32);
        if !g.outputs.contains(&v) {
            g.outputs.push(v);
        }
    }
    out
}

/// The error a calibration run closure returns (any executor's error, boxed).
pub type RunError = Box<dyn std::error::Error + Send + Sync>;

/// The whole calibration loop: for each sample of `set` (read one at a time), `run` executes
/// [`with_observed_outputs`]'s model on the sample's inputs with any executor and returns its
/// outputs by name; the observed ones are fed to a [`Calibrator`] using `method`.
pub fn calibrate(
    model: &Model,
    opts: &QuantOptions,
    method: CalibMethod,
    set: &CalibrationSet,
    mut run: impl FnMut(&Model, Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>, RunError>,
) -> Result<Ranges, QuantError> {
    let observation = plan_observation(model, opts);
    let observed = with_observed_outputs(model, &observation);
    let mut cal = Calibrator::new(method, &observation);
    for sample in set.iter() {
        let sample = sample?;
        let outputs = run(&observed, sample.inputs).map_err(|source| QuantError::Run { sample: sample.name.clone(), source })?;
        cal.observe_outputs(outputs.iter().map(|(n, t)| (n.as_str(), t)))?;
    }
    cal.finish()
}

/// Rewrites `model` into a QDQ graph: static with `ranges` (from a [`Calibrator`] over
/// [`plan_observation`]'s values), dynamic without (the data-free fallback).
pub fn quantize(model: &Model, opts: &QuantOptions, ranges: Option<&Ranges>) -> Result<(Model, QuantSummary), QuantError> {
    quantize_owned(model.clone(), opts, ranges)
}

/// [`quantize`] consuming the model, so its float weights are not held twice (large models).
pub fn quantize_owned(model: Model, opts: &QuantOptions, ranges: Option<&Ranges>) -> Result<(Model, QuantSummary), QuantError> {
    let sel = select::select(&model, opts);
    qdq::rewrite(model, opts, &sel, ranges)
}

pub mod smooth;
pub use smooth::{ChannelMaxCollector, ChannelStats, SmoothOptions, SmoothPlan, SmoothSummary, plan_smoothing, smooth};

// Weight-only quantization (fp16, bf16, int4/int8 group-wise, RTN or GPTQ) and what it shares.
mod graph_edit;
mod opset;
mod weight_only;

pub use weight_only::{
    Hessian, HessianCollector, Hessians, ProxyError, Rounding, WEIGHT_ONLY_METADATA_KEY, WeightFormat, WeightOnlyNode, WeightOnlyOptions,
    WeightOnlySummary, plan_weight_only, quantize_weight_only,
};
