//! safetensors checkpoints read into [`kiln_tensor::Tensor`]s.
//!
//! A file is an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets: [start, end]}, "__metadata__": {..}}`, then the data.
//! [`SafetensorsFile::open`] maps the file read-only and checks the whole header before anything
//! is read through it: the header length against the file and a 100 MB limit, each entry's dtype
//! and shape against the byte span it claims, every span against the data section, and that the
//! spans tile the data exactly (no overlap, no hole, nothing after the last). A file that lies
//! about its sizes is refused with an error naming the tensor and the numbers.
//! [`Checkpoint::open`] adds sharded checkpoints (`model.safetensors.index.json`) and folders.
//!
//! What is zero-copy: the mapping, the header parse, and [`Checkpoint::raw`] (a slice of the
//! mapping). What is not: [`Checkpoint::tensor`] copies the bytes once into the tensor's vector
//! (a `Tensor` owns a `Vec`), decoding little-endian on the way; `tensor_f32` converts on demand
//! (F16/BF16/F8 widen to f32). Pages of the file are read by the OS as they are touched, so
//! a builder that takes a few tensors reads only those.
//!
//! Element types: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL become the
//! Kiln type of the same name; F8_E4M3 and F8_E5M2 are read widened to f32 (`tensor_f32`) and
//! refused by `tensor`, which keeps types; F8_E8M0, F4, F6_* and C64 are parsed (sizes checked)
//! but refused when read, naming the dtype.
//!
//! Architecture invariant: knows tensors and this file format only; nothing of graphs,
//! model architectures or executors.

mod checkpoint;
mod dtype;
mod error;
mod file;
mod header;
mod map;
mod write;

pub use checkpoint::{Checkpoint, INDEX_FILE};
pub use dtype::{StDType, f8_e4m3_to_f32, f8_e5m2_to_f32};
pub use error::SafetensorsError;
pub use file::SafetensorsFile;
pub use header::{Header, MAX_HEADER_BYTES, TensorInfo, parse_header};
pub use write::{serialize, write};
