//! kiln::WMatMul: a MatMul whose constant weights are stored in a low precision (fp16, bf16,
//! or an integer type with scales: int4/uint4 group-wise, int8/uint8), with a float activation.
//! Written by the `fuse-lowp` pass from plain ai.onnx: `Cast(W_f16|W_bf16 -> float)` or
//! `DequantizeLinear(W_int, scale, zero_point)` feeding a MatMul's B.
//!
//! | # | name | |
//! |---|---|---|
//! | 0 | X | f32 activation `[.., K]` |
//! | 1 | W | constant `[K, N]`: f16, bf16, int4, uint4, int8 or uint8 |
//! | 2 | w_scale | integer W only: f32 scalar, `[N]` (one per column), or `[ceil(K / block_size), N]` |
//! | 3 | w_zero_point | like w_scale, W's type; absent: 0 |
//! | 4 | bias | f32 `[N]`, optional |
//!
//! Attributes: `block_size` (integer W: the group size along K when w_scale is 2-D, else 0),
//! `compute` = `"f32"` (default: the activation is used as is) or `"bf16"` (the activation is
//! rounded to bf16 first, as a target computing bf16 x bf16 products with f32 accumulation
//! does), and the activation attributes of `common::activation`. The result is exactly
//! `activation(MatMul(Xc, W_f32) + bias)` with `W_f32 = Cast(W)` or
//! `DequantizeLinear(W, w_scale, w_zero_point, axis, block_size)` (axis 0 when blocked,
//! 1 per column) and `Xc = Cast(Cast(X, bf16), float)` under `compute = "bf16"`.

use super::common::step;
use super::fused_matmul::fused_matmul;
use crate::registry::OpCtx;
use crate::util::{opt, req};
use crate::{OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::{DType, Tensor};
use std::collections::BTreeMap;

pub fn w_matmul(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, w) = (req(inputs, 0)?, req(inputs, 1)?);
    if w.rank() != 2 {
        bail!("WMatMul weights must be [K, N], got shape {:?}", w.shape());
    }
    let wf = dequantized(ctx, w, opt(inputs, 2), opt(inputs, 3))?;
    let xc;
    let x = match ctx.attr_s("compute", "f32") {
        "f32" => x,
        "bf16" => {
            let b = step(ctx, "Cast", cast_to(DType::BF16), &[Some(x)])?;
            xc = step(ctx, "Cast", cast_to(DType::F32), &[Some(&b)])?;
            &xc
        }
        other => bail!("WMatMul compute must be \"f32\" or \"bf16\", got {other:?}"),
    };
    // Only the activation attributes remain for fused_matmul (block_size/compute are not Gemm's).
    fused_matmul(ctx, &[Some(x), Some(&wf), opt(inputs, 4)])
}

fn cast_to(dt: DType) -> BTreeMap<String, Attr> {
    BTreeMap::from([("to".to_string(), Attr::Int(i64::from(dt.to_onnx())))])
}

/// W as f32: a Cast for float storage, a DequantizeLinear for integer storage.
fn dequantized(ctx: &OpCtx, w: &Tensor, scale: Option<&Tensor>, zp: Option<&Tensor>) -> Result<Tensor, OpError> {
    let block = ctx.attr_i("block_size", 0);
    match (w.dtype(), scale) {
        (DType::F16 | DType::BF16, None) => step(ctx, "Cast", cast_to(DType::F32), &[Some(w)]),
        (DType::F16 | DType::BF16, Some(_)) => bail!("WMatMul with {} weights takes no w_scale", w.dtype()),
        (DType::I4 | DType::U4 | DType::I8 | DType::U8, Some(s)) => {
            let mut attrs = BTreeMap::new();
            if block > 0 {
                if s.rank() != 2 {
                    bail!("WMatMul block_size {block} needs a 2-D w_scale [ceil(K/{block}), N], got {:?}", s.shape());
                }
                attrs.insert("axis".to_string(), Attr::Int(0));
                attrs.insert("block_size".to_string(), Attr::Int(block));
            } else if s.len() > 1 {
                attrs.insert("axis".to_string(), Attr::Int(1));
            }
            step(ctx, "DequantizeLinear", attrs, &[Some(w), Some(s), zp])
        }
        (DType::I4 | DType::U4 | DType::I8 | DType::U8, None) => bail!("WMatMul with {} weights needs a w_scale", w.dtype()),
        (other, _) => bail!("WMatMul weights must be f16, bf16, int4, uint4, int8 or uint8, got {other}"),
    }
}
