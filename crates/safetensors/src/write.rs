//! Writing safetensors files (tests, fixtures, `kiln` tools that save weights).

use crate::{SafetensorsError, StDType};
use kiln_tensor::Tensor;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Serializes tensors (in the order given) with optional `__metadata__`. The header is padded
/// with spaces to a multiple of 8 bytes, so the data section starts aligned.
pub fn serialize(tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>, SafetensorsError> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), json!(metadata));
    }
    let mut data = Vec::new();
    for (name, t) in tensors {
        let dtype = StDType::from_kiln(t.dtype()).ok_or_else(|| SafetensorsError::Unsupported {
            name: name.clone(),
            dtype: t.dtype().to_string(),
            reason: "has no safetensors dtype".into(),
        })?;
        let raw = t.to_raw_bytes().unwrap_or_default();
        let start = data.len();
        data.extend_from_slice(&raw);
        let entry = json!({"dtype": dtype.name(), "shape": t.shape(), "data_offsets": [start, data.len()]});
        if header.insert(name.clone(), entry).is_some() {
            return Err(SafetensorsError::Entry { name: name.clone(), reason: "is given twice".into() });
        }
    }
    let mut text = Value::Object(header).to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&data);
    Ok(out)
}

/// Writes [`serialize`]'s bytes to `path` atomically (a temporary sibling, then a rename).
pub fn write(path: &Path, tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<(), SafetensorsError> {
    let bytes = serialize(tensors, metadata)?;
    let io = |source| SafetensorsError::Io { path: path.to_path_buf(), source };
    let tmp = path.with_extension("safetensors.partial");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}
