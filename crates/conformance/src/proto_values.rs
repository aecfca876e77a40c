//! Reads `input_N.pb` / `output_N.pb`: TensorProto, SequenceProto or OptionalProto, as the
//! model's declared input and output types say.

use kiln_onnx::proto::{Message, ModelProto, TensorProto, type_proto};
use kiln_reference::Value;
use protobuf::CodedInputStream;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Tensor,
    Sequence,
    Optional,
}

pub struct IoKinds {
    pub inputs: Vec<Kind>,
    pub outputs: Vec<Kind>,
}

fn kind(tp: Option<&kiln_onnx::proto::TypeProto>) -> Kind {
    match tp.and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::SequenceType(_)) => Kind::Sequence,
        Some(type_proto::Value::OptionalType(_)) => Kind::Optional,
        _ => Kind::Tensor,
    }
}

/// The declared kinds of the runtime inputs (inputs without initializers) and outputs.
pub fn io_kinds(model: &Path) -> Result<IoKinds, String> {
    let bytes = std::fs::read(model).map_err(|e| e.to_string())?;
    let mp = ModelProto::parse_from_bytes(&bytes).map_err(|e| e.to_string())?;
    let g = mp.graph.get_or_default();
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    Ok(IoKinds {
        inputs: g.input.iter().filter(|i| !inits.contains(i.name.as_str())).map(|i| kind(i.type_.as_ref())).collect(),
        outputs: g.output.iter().map(|o| kind(o.type_.as_ref())).collect(),
    })
}

/// Reads `{prefix}_0.pb`, `{prefix}_1.pb`, ... in order.
pub fn read_numbered(dir: &Path, prefix: &str, kinds: &[Kind]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{prefix}_{i}.pb"));
        if !p.exists() {
            break;
        }
        let bytes = std::fs::read(&p).map_err(|e| e.to_string())?;
        let k = kinds.get(i).copied().unwrap_or(Kind::Tensor);
        out.push(decode(&bytes, k).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    Ok(out)
}

fn decode(bytes: &[u8], k: Kind) -> Result<Value, String> {
    match k {
        Kind::Tensor => {
            let (_, t) = kiln_onnx::read_tensor_file(bytes).map_err(|e| e.to_string())?;
            Ok(Value::Tensor(t))
        }
        Kind::Sequence => decode_sequence(bytes),
        Kind::Optional => decode_optional(bytes),
    }
}

fn tensor(bytes: &[u8]) -> Result<kiln_tensor::Tensor, String> {
    let tp = TensorProto::parse_from_bytes(bytes).map_err(|e| e.to_string())?;
    kiln_onnx::tensor_from_proto(&tp, None).map_err(|e| e.to_string())
}

/// Fields (number, bytes) of length-delimited entries; varints are skipped.
fn fields(bytes: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let mut is = CodedInputStream::from_bytes(bytes);
    let mut out = Vec::new();
    while !is.eof().map_err(|e| e.to_string())? {
        let tag = is.read_raw_varint32().map_err(|e| e.to_string())?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                is.read_raw_varint64().map_err(|e| e.to_string())?;
            }
            2 => out.push((field, is.read_bytes().map_err(|e| e.to_string())?)),
            w => return Err(format!("unexpected wire type {w}")),
        }
    }
    Ok(out)
}

/// SequenceProto: tensor_values = 3, sequence_values = 5 (nested sequences are refused).
fn decode_sequence(bytes: &[u8]) -> Result<Value, String> {
    let mut ts = Vec::new();
    for (f, b) in fields(bytes)? {
        match f {
            3 => ts.push(tensor(&b)?),
            1 => {}
            other => return Err(format!("sequence field {other} (non-tensor elements) is not supported")),
        }
    }
    Ok(Value::Sequence(ts))
}

/// OptionalProto: elem_type = 2 (varint), tensor_value = 3, sequence_value = 5.
fn decode_optional(bytes: &[u8]) -> Result<Value, String> {
    for (f, b) in fields(bytes)? {
        match f {
            3 => return Ok(Value::Optional(Some(Box::new(Value::Tensor(tensor(&b)?))))),
            5 => return Ok(Value::Optional(Some(Box::new(decode_sequence(&b)?)))),
            _ => {}
        }
    }
    Ok(Value::Optional(None))
}
