//! The header: an 8-byte little-endian length, then that many bytes of JSON
//! `{name: {dtype, shape, data_offsets: [start, end]}, "__metadata__": {str: str}}`, then the data.
//! Every size and offset is checked against the file before anything is read through it.

use crate::{SafetensorsError, StDType};
use serde_json::Value;
use std::collections::BTreeMap;

/// The largest header Kiln reads (the reference implementation's limit too).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor's entry, checked: its bytes are `data[start..end]` of the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: StDType,
    pub shape: Vec<u64>,
    /// Offsets relative to the start of the data section (after the header).
    pub start: u64,
    pub end: u64,
}

impl TensorInfo {
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A parsed, checked header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    /// Where the data section starts in the file (8 + header length).
    pub data_start: u64,
    /// Tensors by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    /// `__metadata__`, when present.
    pub metadata: BTreeMap<String, String>,
}

/// Parses and checks the header of a whole file's `bytes`: the header length against the file,
/// the JSON, each entry's dtype, shape and size, and that the entries tile the data exactly.
pub fn parse_header(bytes: &[u8]) -> Result<Header, SafetensorsError> {
    let file_len = bytes.len() as u64;
    let Some(len_field) = bytes.get(..8) else {
        return Err(SafetensorsError::TooShort { len: file_len });
    };
    let mut le = [0u8; 8];
    le.copy_from_slice(len_field);
    let declared = u64::from_le_bytes(le);
    if declared > MAX_HEADER_BYTES {
        return Err(SafetensorsError::HeaderTooLarge { declared, limit: MAX_HEADER_BYTES });
    }
    let available = file_len - 8;
    if declared > available {
        return Err(SafetensorsError::HeaderPastEnd { declared, available });
    }
    // declared <= bytes.len() - 8 here.
    let text = &bytes[8..8 + declared as usize];
    if text.first() != Some(&b'{') {
        return Err(SafetensorsError::HeaderJson { reason: "it does not start with '{'".into() });
    }
    let json: Value = serde_json::from_slice(text).map_err(|e| SafetensorsError::HeaderJson { reason: e.to_string() })?;
    let Value::Object(obj) = json else {
        return Err(SafetensorsError::Header { reason: "the header is not a JSON object".into() });
    };
    let data_start = 8 + declared;
    let data_len = file_len - data_start;
    let mut header = Header { data_start, ..Header::default() };
    for (name, v) in obj {
        if name == "__metadata__" {
            header.metadata = metadata(&v)?;
            continue;
        }
        let info = entry(&name, &v)?;
        check_size(&name, &info)?;
        if info.end > data_len {
            return Err(SafetensorsError::OutOfBounds { name, start: info.start, end: info.end, data_len });
        }
        header.tensors.insert(name, info);
    }
    check_layout(&header.tensors, data_len)?;
    Ok(header)
}

fn metadata(v: &Value) -> Result<BTreeMap<String, String>, SafetensorsError> {
    let Value::Object(m) = v else {
        return Err(SafetensorsError::Header { reason: "__metadata__ is not an object of strings".into() });
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(SafetensorsError::Header { reason: format!("__metadata__ value of '{k}' is {other}, not a string") }),
        })
        .collect()
}

fn entry(name: &str, v: &Value) -> Result<TensorInfo, SafetensorsError> {
    let bad = |reason: String| SafetensorsError::Entry { name: name.to_string(), reason };
    let Value::Object(fields) = v else {
        return Err(bad(format!("entry is {v}, not an object with dtype, shape and data_offsets")));
    };
    if let Some(k) = fields.keys().find(|k| !matches!(k.as_str(), "dtype" | "shape" | "data_offsets")) {
        return Err(bad(format!("unexpected field '{k}' (entries have dtype, shape and data_offsets)")));
    }
    let dtype_name = fields.get("dtype").and_then(Value::as_str).ok_or_else(|| bad("dtype missing or not a string".into()))?;
    let dtype = StDType::from_name(dtype_name).ok_or_else(|| SafetensorsError::UnknownDType {
        name: name.to_string(),
        dtype: dtype_name.to_string(),
        known: StDType::known_names(),
    })?;
    let shape = fields
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("shape missing or not an array".into()))?
        .iter()
        .map(|d| d.as_u64().ok_or_else(|| bad(format!("shape has {d}, not a non-negative integer"))))
        .collect::<Result<Vec<u64>, _>>()?;
    let offsets = fields.get("data_offsets").and_then(Value::as_array).ok_or_else(|| bad("data_offsets missing or not an array".into()))?;
    let [start, end] = offsets.as_slice() else {
        return Err(bad(format!("data_offsets has {} values, not [start, end]", offsets.len())));
    };
    let (Some(start), Some(end)) = (start.as_u64(), end.as_u64()) else {
        return Err(bad("data_offsets are not non-negative integers".into()));
    };
    if end < start {
        return Err(bad(format!("data_offsets [{start}, {end}] end before they start")));
    }
    Ok(TensorInfo { dtype, shape, start, end })
}

fn check_size(name: &str, info: &TensorInfo) -> Result<(), SafetensorsError> {
    let count = info.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    let Some(expected) = count.and_then(|c| info.dtype.bytes_for(c)) else {
        return Err(SafetensorsError::Entry {
            name: name.to_string(),
            reason: format!("shape {:?} of {} is not a whole number of bytes (or overflows)", info.shape, info.dtype),
        });
    };
    let actual = info.end - info.start;
    if expected != actual {
        return Err(SafetensorsError::SizeMismatch {
            name: name.to_string(),
            dtype: info.dtype.name().to_string(),
            shape: info.shape.clone(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// The tensors tile the data section exactly: no overlaps, no holes, nothing after the last.
fn check_layout(tensors: &BTreeMap<String, TensorInfo>, data_len: u64) -> Result<(), SafetensorsError> {
    let mut spans: Vec<(&String, &TensorInfo)> = tensors.iter().collect();
    spans.sort_by_key(|(n, t)| (t.start, t.end, *n));
    let mut at = 0u64;
    let mut last: Option<(&String, &TensorInfo)> = None;
    for (name, t) in spans {
        if t.start < at
            && let Some((prev, p)) = last
        {
            return Err(SafetensorsError::Overlap {
                first: prev.clone(),
                first_start: p.start,
                first_end: p.end,
                second: name.clone(),
                second_start: t.start,
                second_end: t.end,
            });
        }
        if t.start > at {
            return Err(SafetensorsError::Hole { start: at, end: t.start });
        }
        at = t.end;
        if t.end > t.start || last.is_none() {
            last = Some((name, t));
        }
    }
    if at < data_len {
        return Err(SafetensorsError::Hole { start: at, end: data_len });
    }
    Ok(())
}
