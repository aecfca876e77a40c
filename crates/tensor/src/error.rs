use crate::DType;

/// Errors from building or converting tensors.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TensorError {
    #[error("shape {shape:?} holds {expected} elements but {actual} were given")]
    LengthMismatch { shape: Vec<usize>, expected: usize, actual: usize },
    #[error("shape {shape:?} is too large ({what}); the limit is {limit} elements")]
    TooLarge { shape: Vec<i64>, what: String, limit: usize },
    #[error("negative dimension {dim} in shape {shape:?}")]
    NegativeDim { dim: i64, shape: Vec<i64> },
    #[error("expected a {expected} tensor, found {actual}")]
    WrongDType { expected: DType, actual: DType },
    #[error("cannot cast {from} to {to}")]
    BadCast { from: DType, to: DType },
    #[error("raw data of {actual} bytes does not fit {count} elements of {dtype} ({expected} bytes)")]
    RawLength { dtype: DType, count: usize, expected: usize, actual: usize },
    #[error("npy: {0}")]
    Npy(String),
}
