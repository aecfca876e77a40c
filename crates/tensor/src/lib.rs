//! Element types, shapes (with symbolic dimensions) and tensor storage.
//!
//! Architecture invariant: this crate knows nothing of graphs, file formats or targets.

mod dtype;
mod elem;
mod error;
pub mod npy;
mod shape;
mod tensor;

pub use dtype::DType;
pub use elem::Elem;
pub use error::TensorError;
pub use half::{bf16, f16};
pub use shape::{Dim, Shape};
pub use tensor::{Data, MAX_ELEMENTS, Tensor, checked_numel};
