//! TensorProto -> [`Tensor`], with inline, typed-field and external data.

use crate::OnnxError;
use kiln_tensor::{DType, Data, Tensor, bf16, checked_numel, f16};
use onnx_protobuf::{Message, SparseTensorProto, TensorProto, tensor_proto::DataLocation};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

/// Reads a serialized `TensorProto` (the `input_N.pb` / `output_N.pb` files of ONNX test data).
pub fn read_tensor_file(bytes: &[u8]) -> Result<(String, Tensor), OnnxError> {
    crate::wire::check_framing(bytes).map_err(OnnxError::Decode)?;
    let tp = TensorProto::parse_from_bytes(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    let t = tensor_from_proto(&tp, None)?;
    Ok((tp.name.clone(), t))
}

fn terr(tp: &TensorProto, reason: impl Into<String>) -> OnnxError {
    OnnxError::Tensor { tensor: tp.name.clone(), reason: reason.into() }
}

/// Converts a TensorProto. `base_dir` is the model's folder, for external data; without one,
/// external data is refused.
pub fn tensor_from_proto(tp: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, OnnxError> {
    let dtype = DType::from_onnx(tp.data_type)
        .ok_or(OnnxError::UnknownDType { tensor: tp.name.clone(), code: tp.data_type })?;
    let count = checked_numel(&tp.dims).map_err(|source| OnnxError::TensorData { tensor: tp.name.clone(), source })?;
    let shape: Vec<usize> = tp.dims.iter().map(|&d| d as usize).collect();
    if tp.segment.is_some() {
        return Err(terr(tp, "segmented tensors are not supported"));
    }
    let wrap = |source| OnnxError::TensorData { tensor: tp.name.clone(), source };
    if tp.data_location.value() == DataLocation::EXTERNAL as i32 {
        let raw = read_external(tp, dtype, count, base_dir)?;
        return Tensor::from_raw_bytes(dtype, shape, &raw).map_err(wrap);
    }
    if !tp.raw_data.is_empty() || (count == 0 && dtype != DType::String) {
        if dtype == DType::String {
            return Err(terr(tp, "string tensors cannot use raw_data"));
        }
        return Tensor::from_raw_bytes(dtype, shape, &tp.raw_data).map_err(wrap);
    }
    let got = |n: usize| -> Result<(), OnnxError> {
        if n == count {
            Ok(())
        } else {
            Err(terr(tp, format!("dims {:?} need {count} values but the tensor holds {n}", tp.dims)))
        }
    };
    let data = match dtype {
        DType::F32 => {
            got(tp.float_data.len())?;
            Data::F32(tp.float_data.clone())
        }
        DType::F64 => {
            got(tp.double_data.len())?;
            Data::F64(tp.double_data.clone())
        }
        DType::I64 => {
            got(tp.int64_data.len())?;
            Data::I64(tp.int64_data.clone())
        }
        DType::U64 => {
            got(tp.uint64_data.len())?;
            Data::U64(tp.uint64_data.clone())
        }
        DType::U32 => {
            got(tp.uint64_data.len())?;
            Data::U32(tp.uint64_data.iter().map(|&x| x as u32).collect())
        }
        DType::String => {
            got(tp.string_data.len())?;
            Data::String(tp.string_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
        }
        DType::I4 | DType::U4 => {
            // Packed two per int32_data entry's low byte.
            if tp.int32_data.len() != count.div_ceil(2) {
                return Err(terr(tp, format!("dims {:?} need {} packed bytes but the tensor holds {}", tp.dims, count.div_ceil(2), tp.int32_data.len())));
            }
            let bytes: Vec<u8> = tp.int32_data.iter().map(|&x| x as u8).collect();
            return Tensor::from_raw_bytes(dtype, shape, &bytes).map_err(wrap);
        }
        _ => {
            let v = &tp.int32_data;
            got(v.len())?;
            match dtype {
                DType::I32 => Data::I32(v.clone()),
                DType::I16 => Data::I16(v.iter().map(|&x| x as i16).collect()),
                DType::I8 => Data::I8(v.iter().map(|&x| x as i8).collect()),
                DType::U8 => Data::U8(v.iter().map(|&x| x as u8).collect()),
                DType::U16 => Data::U16(v.iter().map(|&x| x as u16).collect()),
                DType::Bool => Data::Bool(v.iter().map(|&x| x != 0).collect()),
                DType::F16 => Data::F16(v.iter().map(|&x| f16::from_bits(x as u16)).collect()),
                DType::BF16 => Data::BF16(v.iter().map(|&x| bf16::from_bits(x as u16)).collect()),
                _ => return Err(terr(tp, format!("no typed field holds {dtype} data"))),
            }
        }
    };
    Tensor::new(shape, data).map_err(wrap)
}

fn read_external(tp: &TensorProto, dtype: DType, count: usize, base_dir: Option<&Path>) -> Result<Vec<u8>, OnnxError> {
    let mut location = None;
    let mut offset: u64 = 0;
    let mut length: Option<u64> = None;
    for e in &tp.external_data {
        match e.key.as_str() {
            "location" => location = Some(e.value.clone()),
            "offset" => offset = e.value.parse().map_err(|_| terr(tp, format!("bad external data offset '{}'", e.value)))?,
            "length" => length = Some(e.value.parse().map_err(|_| terr(tp, format!("bad external data length '{}'", e.value)))?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| terr(tp, "external data without a 'location'"))?;
    let ext = |reason: String| OnnxError::ExternalData { tensor: tp.name.clone(), location: location.clone(), reason };
    let base = base_dir.ok_or_else(|| ext("cannot be read: the model was not loaded from a folder".into()))?;
    let rel = Path::new(&location);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(ext("escapes the model's folder (absolute paths and '..' are refused)".into()));
    }
    let base_canon = base.canonicalize().map_err(|e| ext(format!("cannot be resolved: {e}")))?;
    let path = base.join(rel).canonicalize().map_err(|e| ext(format!("cannot be opened: {e}")))?;
    if !path.starts_with(&base_canon) {
        return Err(ext("escapes the model's folder through a link".into()));
    }
    if !path.is_file() {
        return Err(ext("is not a regular file".into()));
    }
    let expected = dtype.storage_bytes(count) as u64;
    let length = length.unwrap_or(expected);
    if length != expected {
        return Err(ext(format!("gives length {length} but {count} elements of {dtype} need {expected} bytes")));
    }
    let mut f = std::fs::File::open(&path).map_err(|e| ext(format!("cannot be opened: {e}")))?;
    let size = f.metadata().map_err(|e| ext(e.to_string()))?.len();
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(ext(format!("is {size} bytes, too short for offset {offset} + length {length}")));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| ext(e.to_string()))?;
    let mut buf = vec![0u8; length as usize];
    f.read_exact(&mut buf).map_err(|e| ext(e.to_string()))?;
    Ok(buf)
}

/// The largest dense form a sparse tensor may expand to. Dense tensors are bounded by the file's
/// size; a sparse one is not, so a few bytes could otherwise ask for any amount of memory.
pub const MAX_SPARSE_DENSE_BYTES: usize = 1 << 30;

/// Densifies a sparse tensor (indices either `[NNZ]` linear or `[NNZ, rank]` coordinates).
pub fn sparse_to_dense(sp: &SparseTensorProto, base_dir: Option<&Path>) -> Result<(String, Tensor), OnnxError> {
    let values_tp = sp.values.as_ref().ok_or_else(|| OnnxError::Tensor { tensor: "<sparse>".into(), reason: "sparse tensor without values".into() })?;
    let name = values_tp.name.clone();
    let serr = |reason: String| OnnxError::Tensor { tensor: name.clone(), reason };
    let values = tensor_from_proto(values_tp, base_dir)?;
    let count = checked_numel(&sp.dims).map_err(|source| OnnxError::TensorData { tensor: name.clone(), source })?;
    // In memory, 4-bit values take a byte each and strings a String each.
    let bytes = match values.dtype() {
        DType::I4 | DType::U4 => count,
        DType::String => count.saturating_mul(std::mem::size_of::<String>()),
        d => d.storage_bytes(count),
    };
    if bytes > MAX_SPARSE_DENSE_BYTES {
        return Err(serr(format!(
            "sparse tensor of dims {:?} is too large to densify ({bytes} bytes; the limit is {MAX_SPARSE_DENSE_BYTES})",
            sp.dims
        )));
    }
    let indices = match sp.indices.as_ref() {
        Some(i) => tensor_from_proto(i, base_dir)?.to_i64_vec().map_err(|e| serr(e.to_string()))?,
        None => Vec::new(),
    };
    let shape: Vec<usize> = sp.dims.iter().map(|&d| d as usize).collect();
    let nnz = values.len();
    let rank = shape.len();
    let outside = |i: i64| serr(format!("sparse index {i} is outside dims {:?}", sp.dims));
    let mut linear: Vec<usize> = Vec::with_capacity(nnz);
    if indices.len() == nnz {
        for &i in &indices {
            linear.push(usize::try_from(i).ok().filter(|&i| i < count).ok_or_else(|| outside(i))?);
        }
    } else if rank > 0 && Some(indices.len()) == nnz.checked_mul(rank) {
        for coords in indices.chunks(rank) {
            let mut at = 0usize;
            for (&i, &d) in coords.iter().zip(&shape) {
                // at * d + i < count <= MAX_ELEMENTS once every coordinate is in range.
                let i = usize::try_from(i).ok().filter(|&i| i < d).ok_or_else(|| outside(i))?;
                at = at * d + i;
            }
            linear.push(at);
        }
    } else {
        return Err(serr(format!("{} indices do not fit {nnz} values of rank {rank}", indices.len())));
    }
    let t = Tensor::new(shape, scatter(values.data(), &linear, count)).map_err(|e| serr(e.to_string()))?;
    Ok((name, t))
}

/// Zeros of `values`' type with `values[k]` at `at[k]` (exact for every element type).
fn scatter(values: &Data, at: &[usize], count: usize) -> Data {
    fn place<T: Clone + Default>(v: &[T], at: &[usize], count: usize) -> Vec<T> {
        let mut out = vec![T::default(); count];
        for (&i, x) in at.iter().zip(v) {
            if let Some(slot) = out.get_mut(i) {
                *slot = x.clone();
            }
        }
        out
    }
    match values {
        Data::F32(v) => Data::F32(place(v, at, count)),
        Data::F64(v) => Data::F64(place(v, at, count)),
        Data::F16(v) => Data::F16(place(v, at, count)),
        Data::BF16(v) => Data::BF16(place(v, at, count)),
        Data::I64(v) => Data::I64(place(v, at, count)),
        Data::I32(v) => Data::I32(place(v, at, count)),
        Data::I16(v) => Data::I16(place(v, at, count)),
        Data::I8(v) => Data::I8(place(v, at, count)),
        Data::U8(v) => Data::U8(place(v, at, count)),
        Data::U16(v) => Data::U16(place(v, at, count)),
        Data::U32(v) => Data::U32(place(v, at, count)),
        Data::U64(v) => Data::U64(place(v, at, count)),
        Data::Bool(v) => Data::Bool(place(v, at, count)),
        Data::I4(v) => Data::I4(place(v, at, count)),
        Data::U4(v) => Data::U4(place(v, at, count)),
        Data::String(v) => Data::String(place(v, at, count)),
    }
}
