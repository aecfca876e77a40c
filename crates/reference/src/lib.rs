//! The reference executor: runs a [`kiln_ir::Model`] with plain, obviously-correct kernels.
//! It is the accuracy oracle every optimised target is compared with.
//!
//! Kernels are registered one op per line in `ops/` with the opset range they implement;
//! [`op_set`] tells the importer which ops this executor supports.
//!
//! Architecture invariant: this crate knows nothing of ONNX protobuf, targets, files or the CLI.
//! Clarity beats speed here, but no kernel is quadratic where linear is plain.

mod error;
mod exec;
pub mod ops;
mod registry;
pub mod util;
mod value;

pub use error::{ExecError, OpError};
pub use exec::{Executor, run, run_node};
pub use registry::{Kernel, OpCtx, Registry, op_set, registry};
pub use value::{Map, Value};
