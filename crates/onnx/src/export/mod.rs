//! IR -> ONNX: [`export`] writes a [`kiln_ir::Model`] as a `.onnx` file that `onnx.checker`
//! (full check) accepts and onnxruntime runs.
//!
//! What is written: the model's IR version (8 when it has none) and opset imports (plus any
//! domain a node uses without one, e.g. `kiln` after fusion), producer and metadata; each
//! graph's inputs and outputs with their types (symbolic dims as `dim_param`), initializers as
//! `raw_data` (strings as `string_data`), nodes with every attribute kind (subgraphs recursively)
//! and `value_info` for the intermediate values whose types are known. The IR keeps tensor types
//! only: a main-graph output without one is an error, except ZipMap's sequence of maps, whose
//! type its attributes give.
//!
//! Files are written atomically (a temporary sibling, then a rename). When the initializers
//! would take the file past [`ExportOptions::external_threshold`] (protobuf cannot hold 2 GiB),
//! every initializer of at least [`ExportOptions::min_external_bytes`] goes to `<file>.data`
//! beside the model, 4096-byte aligned, referenced by relative location/offset/length.

mod proto;
mod write;

pub use proto::{DEFAULT_IR_VERSION, tensor_proto};
pub use write::{ExportOptions, Exported, export, to_bytes, to_proto};
