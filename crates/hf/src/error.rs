use std::path::PathBuf;

/// Why a model could not be built from a config and its weights. Each variant names the file,
/// key or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no config.json found for {path}: a Hugging Face model folder has config.json beside its weights")]
    NoConfig { path: PathBuf },
    #[error("no weights found for {path}: expected model.safetensors, model.safetensors.index.json or *.safetensors beside config.json")]
    NoWeights { path: PathBuf },
    #[error("{path} is not valid JSON: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("config.json has no \"model_type\": Kiln picks the architecture builder by it")]
    NoModelType,
    #[error("model_type \"{found}\" has no Kiln builder; Kiln builds: {known}")]
    UnknownModelType { found: String, known: String },
    #[error("config.json: \"{key}\" {reason}")]
    Config { key: String, reason: String },
    #[error(
        "the checkpoint {checkpoint} has no tensor '{name}' (looked under the prefixes {tried}); is it the checkpoint of this config.json's model_type?"
    )]
    MissingTensor { name: String, checkpoint: String, tried: String },
    #[error("tensor '{name}' has shape {found:?}, the config says {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{what} is not supported by Kiln's builder; {hint}")]
    Unsupported { what: String, hint: String },
    #[error("pooling config {path}: {reason}")]
    Pooling { path: PathBuf, reason: String },
    #[error(transparent)]
    Weights(#[from] kiln_safetensors::SafetensorsError),
    #[error("the built graph is invalid (a bug in the builder): {0}")]
    Ir(#[from] kiln_ir::IrError),
}
