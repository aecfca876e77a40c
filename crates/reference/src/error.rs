use kiln_tensor::TensorError;

/// An op kernel's failure, without the node (the executor adds it).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum OpError {
    #[error("{0}")]
    Invalid(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// Shorthand for `Err(OpError::Invalid(format!(..)))`.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::OpError::Invalid(format!($($t)*))) };
}

/// Why a model could not be executed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ExecError {
    #[error("node '{node}' ({op}): {source}")]
    Node { node: String, op: String, source: OpError },
    #[error("node '{node}': op {op} is not supported by the reference executor ({reason})")]
    Unsupported { node: String, op: String, reason: String },
    #[error("input '{name}' is required but was not given")]
    MissingInput { name: String },
    #[error("'{name}' is not an input of the model (inputs: {known})")]
    UnknownInput { name: String, known: String },
    #[error("input '{name}': {reason}")]
    BadInput { name: String, reason: String },
    #[error("value '{name}' was read before anything defined it")]
    Undefined { name: String },
    #[error("graph output '{name}' was not produced")]
    MissingOutput { name: String },
    #[error(transparent)]
    Ir(#[from] kiln_ir::IrError),
}
