//! kiln::QMatMul and kiln::QConv: a MatMul or Conv whose activation and weights are int8,
//! written by the `fuse-qdq` pass from a QuantizeLinear/DequantizeLinear graph (Kiln's own
//! quantizer or an imported QDQ, QLinear* or *Integer model).
//!
//! Both take and give float tensors; the quantization of the activation is part of the op, so
//! a target runs it as quantize-on-the-fly -> integer GEMM (i32 accumulation) -> one float
//! epilogue (scales, bias, activation). Inputs, in order:
//!
//! | # | name | |
//! |---|---|---|
//! | 0 | X | f32 activation: `[.., K]` (QMatMul), `[N, C, spatial..]` or NHWC (QConv) |
//! | 1 | x_scale | f32 scalar; absent: dynamic, scale and zero point of `DynamicQuantizeLinear(X)` (u8) per call |
//! | 2 | x_zero_point | u8 or i8 scalar; its type is the activation's integer type (absent with x_scale: u8 0) |
//! | 3 | W | int8 or uint8 constant: `[K, N]` (QMatMul), `[M, C/group, kH, kW]` (QConv) |
//! | 4 | w_scale | f32 scalar, or one per output channel (`[N]` / `[M]`) |
//! | 5 | w_zero_point | like w_scale, W's type; absent: 0 (symmetric) |
//! | 6 | bias | f32 `[N]` / `[M]`, optional |
//!
//! Attributes: QConv takes Conv's and `layout` as kiln::FusedConv does; both take the activation
//! attributes of `common::activation`. The result is exactly
//! `activation(MatMul|Conv(DQ(Q(X)), DQ(W)) + bias)`, computed here by running those ai.onnx
//! kernels one after another (dynamic: `DynamicQuantizeLinear` then `DequantizeLinear`).

use super::common::{step, step_all};
use super::{fused_conv::fused_conv, fused_matmul::fused_matmul};
use crate::registry::OpCtx;
use crate::util::{opt, req};
use crate::{OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::Tensor;
use std::collections::BTreeMap;

pub fn q_matmul(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let w = req(inputs, 3)?;
    if w.rank() != 2 {
        bail!("QMatMul weights must be [K, N], got shape {:?}", w.shape());
    }
    let (x, wd) = (quantized_activation(ctx, inputs)?, dequantized_weights(ctx, inputs, 1)?);
    // The node's attributes are the activation's only (no Gemm ones), so this is MatMul + Add.
    fused_matmul(ctx, &[Some(&x), Some(&wd), opt(inputs, 6)])
}

pub fn q_conv(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, wd) = (quantized_activation(ctx, inputs)?, dequantized_weights(ctx, inputs, 0)?);
    fused_conv(ctx, &[Some(&x), Some(&wd), opt(inputs, 6)])
}

/// `DQ(Q(X))` with the static parameters, or with those `DynamicQuantizeLinear` computes.
fn quantized_activation(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Tensor, OpError> {
    let x = req(inputs, 0)?;
    let none = BTreeMap::new;
    match (opt(inputs, 1), opt(inputs, 2)) {
        (Some(s), zp) => {
            let q = step(ctx, "QuantizeLinear", none(), &[Some(x), Some(s), zp])?;
            step(ctx, "DequantizeLinear", none(), &[Some(&q), Some(s), zp])
        }
        (None, Some(_)) => bail!("x_zero_point is given without x_scale"),
        (None, None) => {
            let mut parts = step_all(ctx, "DynamicQuantizeLinear", none(), &[Some(x)])?.into_iter();
            let (Some(q), Some(s), Some(zp)) = (parts.next(), parts.next(), parts.next()) else {
                bail!("DynamicQuantizeLinear gave fewer than three outputs");
            };
            step(ctx, "DequantizeLinear", none(), &[Some(&q), Some(&s), Some(&zp)])
        }
    }
}

/// `DQ(W)`, per output channel along `axis` when w_scale has more than one element.
fn dequantized_weights(ctx: &OpCtx, inputs: &[Option<&Tensor>], axis: i64) -> Result<Tensor, OpError> {
    let (w, s) = (req(inputs, 3)?, req(inputs, 4)?);
    if !matches!(w.dtype(), kiln_tensor::DType::I8 | kiln_tensor::DType::U8) {
        bail!("quantized weights must be int8 or uint8, got {}", w.dtype());
    }
    let mut attrs = BTreeMap::new();
    if s.len() > 1 {
        attrs.insert("axis".to_string(), Attr::Int(axis));
    }
    step(ctx, "DequantizeLinear", attrs, &[Some(w), Some(s), opt(inputs, 5)])
}
