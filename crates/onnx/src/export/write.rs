//! Writing the ModelProto: inline, or with initializers in an external data file.

use super::proto::{Inline, Placement, model_proto};
use crate::OnnxError;
use kiln_ir::Model;
use onnx_protobuf::{Message, ModelProto};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The largest protobuf message: files at or past it cannot be read back.
const PROTOBUF_LIMIT: u64 = (1 << 31) - 1;

#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Initializer bytes above which they go to an external data file (default 2e9, under
    /// protobuf's 2 GiB limit; tests lower it to exercise the external path).
    pub external_threshold: u64,
    /// With external data, initializers smaller than this stay inline.
    pub min_external_bytes: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { external_threshold: 2_000_000_000, min_external_bytes: 1024 }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    pub path: PathBuf,
    pub model_bytes: u64,
    /// The external data file, its size and how many tensors it holds.
    pub external: Option<(PathBuf, u64, usize)>,
}

/// The model as a ModelProto, every initializer inline.
pub fn to_proto(model: &Model) -> Result<ModelProto, OnnxError> {
    model_proto(model, &mut Inline)
}

/// The model serialized, every initializer inline.
pub fn to_bytes(model: &Model) -> Result<Vec<u8>, OnnxError> {
    let mp = to_proto(model)?;
    serialize(&mp)
}

fn serialize(mp: &ModelProto) -> Result<Vec<u8>, OnnxError> {
    let size = mp.compute_size();
    if size > PROTOBUF_LIMIT {
        return Err(OnnxError::Export(format!(
            "the model would serialize to {size} bytes, past protobuf's 2 GiB limit: export it with external data"
        )));
    }
    mp.write_to_bytes().map_err(|e| OnnxError::Export(format!("protobuf serialization failed: {e}")))
}

/// Initializer bytes of the main graph (what decides between inline and external data).
fn initializer_bytes(model: &Model) -> u64 {
    model.graph.initializers.values().map(|t| t.dtype().storage_bytes(t.len()) as u64).sum()
}

/// Appends tensors to the external data file, each at a 4096-byte-aligned offset.
struct External {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
    location: String,
    pos: u64,
    min_bytes: usize,
    count: usize,
}

impl Placement for External {
    fn place(&mut self, name: &str, raw: &[u8]) -> Result<Option<(u64, u64)>, OnnxError> {
        if raw.len() < self.min_bytes {
            return Ok(None);
        }
        let io = |e: std::io::Error| OnnxError::Export(format!("writing tensor '{name}' to {}: {e}", self.path.display()));
        let aligned = self.pos.div_ceil(4096) * 4096;
        let pad = vec![0u8; (aligned - self.pos) as usize];
        self.file.write_all(&pad).map_err(io)?;
        self.file.write_all(raw).map_err(io)?;
        self.pos = aligned + raw.len() as u64;
        self.count += 1;
        Ok(Some((aligned, raw.len() as u64)))
    }
    fn location(&self) -> &str {
        &self.location
    }
}

/// A sibling path for writing before the rename.
fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OnnxError> {
    let tmp = partial(path);
    let io = |source| OnnxError::Io { path: path.to_path_buf(), source };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Writes `model` to `path` (atomically), with external data beside it when the initializers
/// pass `opts.external_threshold`.
pub fn export(model: &Model, path: &Path, opts: &ExportOptions) -> Result<Exported, OnnxError> {
    if initializer_bytes(model) <= opts.external_threshold {
        let bytes = to_bytes(model)?;
        write_atomic(path, &bytes)?;
        return Ok(Exported { path: path.to_path_buf(), model_bytes: bytes.len() as u64, external: None });
    }
    let file_name = path.file_name().ok_or_else(|| OnnxError::Export(format!("{} names no file", path.display())))?;
    let location = format!("{}.data", file_name.to_string_lossy());
    let data_path = path.with_file_name(&location);
    let data_tmp = partial(&data_path);
    let io = |source| OnnxError::Io { path: data_path.clone(), source };
    let file = std::fs::File::create(&data_tmp).map_err(io)?;
    let mut ext =
        External { file: std::io::BufWriter::new(file), path: data_path.clone(), location, pos: 0, min_bytes: opts.min_external_bytes, count: 0 };
    let result = (|| {
        let mp = model_proto(model, &mut ext)?;
        let bytes = serialize(&mp)?;
        let file = ext.file.into_inner().map_err(|e| OnnxError::Io { path: data_path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&data_tmp, &data_path).map_err(io)?;
        write_atomic(path, &bytes)?;
        Ok(Exported { path: path.to_path_buf(), model_bytes: bytes.len() as u64, external: Some((data_path.clone(), ext.pos, ext.count)) })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&data_tmp);
    }
    result
}
