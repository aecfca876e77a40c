use kiln_tensor::TensorError;
use std::path::PathBuf;

/// Why a model could not be imported. Each variant names the file, tensor or node at fault and,
/// where there is one, the way out.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not a valid ONNX protobuf (truncated, corrupted or not an ONNX file): {0}")]
    Decode(String),
    #[error("the file parsed but holds no graph: is it an ONNX model (not a tensor or a checkpoint)?")]
    NoGraph,
    #[error("IR version {found} is not supported (Kiln reads IR versions 3..={max}); re-export the model with an exporter that writes IR versions 3..={max}")]
    IrVersion { found: i64, max: i64 },
    #[error("the model needs ai.onnx opset {found}, newer than the newest Kiln supports ({max}); re-export with opset <= {max}")]
    OpsetTooNew { found: i64, max: i64 },
    #[error("tensor '{tensor}': {reason}")]
    Tensor { tensor: String, reason: String },
    #[error("tensor '{tensor}': element type code {code} is not supported (complex and float8 tensors are not read)")]
    UnknownDType { tensor: String, code: i32 },
    #[error("tensor '{tensor}': {source}")]
    TensorData { tensor: String, source: TensorError },
    #[error("tensor '{tensor}': external data file '{location}' {reason}")]
    ExternalData { tensor: String, location: String, reason: String },
    #[error("node '{node}' ({op}): {reason}")]
    Node { node: String, op: String, reason: String },
    #[error("local function '{function}': {reason}")]
    Function { function: String, reason: String },
    #[error("value '{value}': {reason}")]
    Value { value: String, reason: String },
    #[error("cannot export: {0}")]
    Export(String),
    #[error("the imported graph is invalid: {0}")]
    Invalid(#[from] kiln_ir::IrError),
}
