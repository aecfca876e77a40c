use std::path::PathBuf;

/// Why a safetensors checkpoint could not be read. Every variant names the file or tensor at
/// fault and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the file is {len} bytes: a safetensors file starts with an 8-byte header length (is it truncated, or not safetensors?)")]
    TooShort { len: u64 },
    #[error("the header length field says {declared} bytes, more than the {limit}-byte limit: the file is corrupt or not safetensors")]
    HeaderTooLarge { declared: u64, limit: u64 },
    #[error("the header length field says {declared} bytes but only {available} bytes follow it: the file is truncated or not safetensors")]
    HeaderPastEnd { declared: u64, available: u64 },
    #[error("the header is not valid JSON ({reason}): the file is corrupt or not safetensors")]
    HeaderJson { reason: String },
    #[error("the header is malformed: {reason}")]
    Header { reason: String },
    #[error("tensor '{name}': {reason}")]
    Entry { name: String, reason: String },
    #[error("tensor '{name}': unknown dtype \"{dtype}\" (safetensors dtypes: {known})")]
    UnknownDType { name: String, dtype: String, known: String },
    #[error(
        "tensor '{name}': {dtype} of shape {shape:?} needs {expected} bytes but its data_offsets span {actual}: the header lies about the tensor's size"
    )]
    SizeMismatch { name: String, dtype: String, shape: Vec<u64>, expected: u64, actual: u64 },
    #[error(
        "tensor '{name}': data_offsets [{start}, {end}] run past the end of the data ({data_len} bytes after the header): the file is truncated or the header is wrong"
    )]
    OutOfBounds { name: String, start: u64, end: u64, data_len: u64 },
    #[error(
        "tensors '{first}' [{first_start}, {first_end}] and '{second}' [{second_start}, {second_end}] overlap: each byte of the data belongs to one tensor"
    )]
    Overlap { first: String, first_start: u64, first_end: u64, second: String, second_start: u64, second_end: u64 },
    #[error(
        "bytes [{start}, {end}) of the data belong to no tensor: a safetensors buffer has no holes (the header is wrong or the file was altered)"
    )]
    Hole { start: u64, end: u64 },
    #[error("tensor '{name}' is not in {path} ({count} tensors there)")]
    NotFound { name: String, path: String, count: usize },
    #[error("tensor '{name}': {dtype} {reason}")]
    Unsupported { name: String, dtype: String, reason: String },
    #[error("tensor '{name}': {source}")]
    Tensor { name: String, source: kiln_tensor::TensorError },
    #[error("shard index {path}: {reason}")]
    Index { path: PathBuf, reason: String },
    /// `inner` is not a `source`: the message already holds it, and error chains would print it twice.
    #[error("{path}: {inner}")]
    InFile { path: PathBuf, inner: Box<SafetensorsError> },
    #[error("tensor '{name}' is in both {first} and {second}")]
    Duplicate { name: String, first: String, second: String },
    #[error("{path} holds no safetensors checkpoint (looked for model.safetensors.index.json, model.safetensors and *.safetensors)")]
    NoCheckpoint { path: PathBuf },
}
