//! Cast and CastLike, with ONNX Cast semantics (see `Tensor::cast`), strings included.
//! The `saturate` attribute only concerns float8 types, which Kiln does not have.

use crate::util::req;
use crate::{OpCtx, OpError};
use kiln_tensor::{DType, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

pub fn cast(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let code = ctx.req_i("to")?;
    let to = i32::try_from(code)
        .ok()
        .and_then(DType::from_onnx)
        .ok_or_else(|| OpError::Unsupported(format!("Cast to element type code {code} (complex and float8 are not supported)")))?;
    Ok(vec![req(inputs, 0)?.cast(to)?])
}

pub fn cast_like(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    Ok(vec![req(inputs, 0)?.cast(req(inputs, 1)?.dtype())?])
}
