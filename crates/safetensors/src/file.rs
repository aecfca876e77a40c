//! One `.safetensors` file: mapped, header checked, tensors read on demand.

use crate::header::{Header, TensorInfo, parse_header};
use crate::map::{Bytes, map_file};
use crate::{SafetensorsError, StDType, dtype};
use kiln_tensor::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A safetensors file. Opening maps it and checks the header (every offset against the file);
/// tensor bytes are read only when asked for.
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Bytes,
    header: Header,
}

impl SafetensorsFile {
    /// Maps and checks `path`.
    pub fn open(path: &Path) -> Result<SafetensorsFile, SafetensorsError> {
        let io = |source| SafetensorsError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < 8 {
            // Mapping an empty file fails on some systems; say what is wrong instead.
            return Err(in_file(path, SafetensorsError::TooShort { len }));
        }
        let bytes = map_file(&file).map_err(io)?;
        SafetensorsFile::from_parts(path.to_path_buf(), bytes)
    }

    /// A checkpoint held in memory (`path` is only used in messages).
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<SafetensorsFile, SafetensorsError> {
        SafetensorsFile::from_parts(path.into(), Bytes::Owned(bytes))
    }

    fn from_parts(path: PathBuf, bytes: Bytes) -> Result<SafetensorsFile, SafetensorsError> {
        let header = parse_header(&bytes).map_err(|e| in_file(&path, e))?;
        Ok(SafetensorsFile { path, bytes, header })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.header.tensors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.header.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.header.tensors.is_empty()
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.header.tensors.get(name)
    }

    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.header.metadata
    }

    /// The tensor's bytes, borrowed from the mapping (zero-copy).
    pub fn raw(&self, name: &str) -> Result<(&TensorInfo, &[u8]), SafetensorsError> {
        let info = self.info(name).ok_or_else(|| SafetensorsError::NotFound {
            name: name.to_string(),
            path: self.path.display().to_string(),
            count: self.len(),
        })?;
        // Checked at open: data_start + end <= file length.
        let (a, b) = (self.header.data_start + info.start, self.header.data_start + info.end);
        let bytes = self.bytes.get(a as usize..b as usize).ok_or_else(|| SafetensorsError::OutOfBounds {
            name: name.to_string(),
            start: info.start,
            end: info.end,
            data_len: self.bytes.len() as u64 - self.header.data_start,
        })?;
        Ok((info, bytes))
    }

    /// The tensor at its own element type (one copy: the bytes become the tensor's vector).
    /// F8 and the other types Kiln has no element type for are refused; see [`Self::tensor_f32`].
    pub fn tensor(&self, name: &str) -> Result<Tensor, SafetensorsError> {
        let (info, raw) = self.raw(name)?;
        let Some(dtype) = info.dtype.to_kiln() else {
            let reason = match info.dtype {
                StDType::F8E4M3 | StDType::F8E5M2 => "has no Kiln element type; read it widened to f32 (tensor_f32)",
                _ => "is not supported by Kiln (no element type, and no conversion)",
            };
            return Err(SafetensorsError::Unsupported { name: name.to_string(), dtype: info.dtype.to_string(), reason: reason.into() });
        };
        Tensor::from_raw_bytes(dtype, shape(name, info)?, raw).map_err(|source| SafetensorsError::Tensor { name: name.to_string(), source })
    }

    /// The tensor as f32: float types (F8_E4M3 and F8_E5M2 included) widen, integers convert
    /// with Cast semantics.
    pub fn tensor_f32(&self, name: &str) -> Result<Tensor, SafetensorsError> {
        let (info, raw) = self.raw(name)?;
        let decode: Option<fn(u8) -> f32> = match info.dtype {
            StDType::F8E4M3 => Some(dtype::f8_e4m3_to_f32),
            StDType::F8E5M2 => Some(dtype::f8_e5m2_to_f32),
            _ => None,
        };
        if let Some(decode) = decode {
            let v: Vec<f32> = raw.iter().map(|&b| decode(b)).collect();
            return Tensor::from_vec(shape(name, info)?, v).map_err(|source| SafetensorsError::Tensor { name: name.to_string(), source });
        }
        let t = self.tensor(name)?;
        if t.dtype() == DType::F32 {
            return Ok(t);
        }
        t.cast(DType::F32).map_err(|source| SafetensorsError::Tensor { name: name.to_string(), source })
    }
}

fn shape(name: &str, info: &TensorInfo) -> Result<Vec<usize>, SafetensorsError> {
    let dims: Vec<i64> = info.shape.iter().map(|&d| i64::try_from(d).unwrap_or(i64::MAX)).collect();
    kiln_tensor::checked_numel(&dims).map_err(|source| SafetensorsError::Tensor { name: name.to_string(), source })?;
    Ok(info.shape.iter().map(|&d| d as usize).collect())
}

pub(crate) fn in_file(path: &Path, e: SafetensorsError) -> SafetensorsError {
    SafetensorsError::InFile { path: path.to_path_buf(), inner: Box::new(e) }
}
