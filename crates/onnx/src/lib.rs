//! ONNX import (`ModelProto` bytes -> [`kiln_ir::Model`]) and export ([`export`]: IR -> `.onnx`).
//!
//! Uses `onnx-protobuf` (pre-generated rust-protobuf 3.4 code for onnx.proto, IR version 10):
//! it needs no `protoc` at build time and skips unknown newer fields, which is what an importer
//! of files from many exporter versions wants.
//!
//! Architecture invariant: this crate knows nothing of op semantics, executors or targets.
//! It is told which ops an executor supports (an [`kiln_ir::OpSet`]) and marks the rest
//! unsupported; it never stops at the first unknown op.
//!
//! Model-local functions (`ModelProto.functions`) are expanded inline at import (functions.rs):
//! the IR has no calls, only the functions' body nodes.

mod error;
pub mod export;
mod functions;
mod import;
mod tensor;
mod wire;

pub use error::OnnxError;
pub use export::{ExportOptions, Exported, export};
pub use functions::{MAX_CALL_DEPTH, MAX_EXPANDED_NODES};
pub use import::{MAX_DEFAULT_OPSET, MAX_IR_VERSION, import_bytes, load};
pub use tensor::{read_tensor_file, tensor_from_proto};

/// The raw protobuf messages, for tools that need fields the IR does not keep.
pub use onnx_protobuf as proto;
