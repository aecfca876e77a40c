use kiln_tensor::DType;
use std::path::PathBuf;

/// Errors from planning, calibrating and rewriting.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("'{value}' is not an observed value (observed: {known}); feed only the values plan_observation lists")]
    NotObserved { value: String, known: String },
    #[error("observed value '{value}' is {dtype}, not float; only float activations are calibrated")]
    NotFloat { value: String, dtype: DType },
    #[error(
        "observed value '{value}' got no finite value in {tensors} tensors; feed at least one sample, or quantize without ranges (dynamic)"
    )]
    NoData { value: String, tensors: u64 },
    #[error(
        "value '{value}' (activation of node '{node}') has no calibrated range; calibrate over plan_observation() of this model with these options, or pass no ranges for dynamic quantization"
    )]
    NotCalibrated { value: String, node: String },
    #[error("running the model on calibration sample '{sample}' failed: {source}")]
    Run { sample: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("cannot quantize weight '{name}': {message}")]
    Weight { name: String, message: String },
    #[error("the quantized graph does not verify: {0}")]
    Ir(#[from] kiln_ir::IrError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("SmoothQuant alpha must be in [0, 1], got {alpha}")]
    SmoothAlpha { alpha: f32 },
    #[error(
        "activation '{value}' has no channel maxima; feed a ChannelMaxCollector over plan.observation() with the outputs of with_observed_outputs(model, &plan.observation())"
    )]
    SmoothNotObserved { value: String },
    #[error("'{value}' has {found} channels (last axis) where {expected} were expected; observe the model the plan was made on")]
    Channels { value: String, expected: usize, found: usize },
    #[error("the smoothing plan does not match this model at node '{node}': {reason}; plan and smooth the same model")]
    SmoothPlan { node: String, reason: String },
    #[error(
        "{why} needs ai.onnx opset {to}, and node '{node}' ({op}) changes meaning between opset {opset} and {to} ({reason}): convert the model to opset {to} first"
    )]
    OpsetRaise { why: String, node: String, op: String, opset: i64, to: i64, reason: String },
    #[error(
        "observed value '{value}' has {found} features per row, but its Hessian is {expected} x {expected}; feed the same model's activations"
    )]
    HessianShape { value: String, expected: usize, found: usize },
    #[error(
        "GPTQ needs the Hessian of '{value}' (activation of node '{node}'); collect Hessians over plan_weight_only() of this model with these options, or use round-to-nearest"
    )]
    NoHessian { value: String, node: String },
    #[error(
        "observed value '{value}' got no finite row in {tensors} tensors; feed at least one calibration sample, or use round-to-nearest"
    )]
    NoRows { value: String, tensors: u64 },
}

/// Errors from reading calibration data; each names the file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{place} holds no calibration samples: put one .npz per sample there (arrays named by graph input: {inputs}), or .npy files named <input>.npy / <input>_<n>.npy"
    )]
    Empty { place: String, inputs: String },
    #[error("{path}: {reason}")]
    Ambiguous { path: PathBuf, reason: String },
    #[error("{path}: '{name}' is not an input of the model (inputs: {inputs}); rename it to an input's name")]
    UnknownInput { path: PathBuf, name: String, inputs: String },
    #[error("sample '{sample}' lacks input '{input}'; add {hint}")]
    MissingInput { sample: String, input: String, hint: String },
    #[error("{path}: input '{input}' is {found} but the model declares {expected}; save it as {expected}")]
    WrongDType { path: PathBuf, input: String, expected: DType, found: DType },
    #[error("{path}: input '{input}' has shape {found:?} but the model declares {expected}; reshape the array")]
    WrongShape { path: PathBuf, input: String, expected: String, found: Vec<usize> },
    #[error("{path}: not a valid .npy array ({source}); write it with numpy.save")]
    Npy { path: PathBuf, source: kiln_tensor::TensorError },
    #[error("{path}: not a readable .npz archive ({source}); write it with numpy.savez or numpy.savez_compressed")]
    Zip { path: PathBuf, source: zip::result::ZipError },
    #[error("{path}: calibration files must be .npz or .npy")]
    Extension { path: PathBuf },
}
