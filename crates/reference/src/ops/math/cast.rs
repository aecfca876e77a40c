//! Cast and CastLike, with ONNX Cast semantics (see `Tensor::cast`), strings included.
//! The `saturate` attribute only concerns float8 types, which Kiln does not have.

use crate::util::req;
use crate::{OpCtx, OpError};
use kiln_tensor::{DType, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

pub fn cast(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    // Opset 1-5 name the type as a string ("FLOAT"); later opsets give the TensorProto code.
    let to = match ctx.node.attr_str("to") {
        Some(name) => type_by_name(name).ok_or_else(|| OpError::Unsupported(format!("Cast to element type {name:?}")))?,
        None => {
            let code = ctx.req_i("to")?;
            i32::try_from(code).ok().and_then(DType::from_onnx).ok_or_else(|| {
                OpError::Unsupported(format!("Cast to element type code {code} (complex and float8 are not supported)"))
            })?
        }
    };
    Ok(vec![req(inputs, 0)?.cast(to)?])
}

/// The ONNX `TensorProto.DataType` names Kiln has a dtype for.
fn type_by_name(name: &str) -> Option<DType> {
    Some(match name.to_ascii_uppercase().as_str() {
        "FLOAT" => DType::F32,
        "DOUBLE" => DType::F64,
        "FLOAT16" => DType::F16,
        "BFLOAT16" => DType::BF16,
        "INT64" => DType::I64,
        "INT32" => DType::I32,
        "INT16" => DType::I16,
        "INT8" => DType::I8,
        "UINT8" => DType::U8,
        "UINT16" => DType::U16,
        "UINT32" => DType::U32,
        "UINT64" => DType::U64,
        "BOOL" => DType::Bool,
        "STRING" => DType::String,
        "INT4" => DType::I4,
        "UINT4" => DType::U4,
        _ => return None,
    })
}

pub fn cast_like(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    Ok(vec![req(inputs, 0)?.cast(req(inputs, 1)?.dtype())?])
}
