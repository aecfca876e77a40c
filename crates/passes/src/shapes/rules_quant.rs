//! Inference for the quantization ops: QuantizeLinear, DequantizeLinear,
//! DynamicQuantizeLinear, QLinearMatMul / QLinearConv, MatMulInteger / ConvInteger.

use super::rules::{conv_w, matmul};
use super::{Cx, Fact};
use kiln_tensor::{DType, Dim};

pub fn infer(cx: &Cx, op: &str) -> Result<Option<Vec<Fact>>, String> {
    let same = || cx.shape(0).map(<[Dim]>::to_vec);
    Ok(Some(match op {
        // The zero point's type, else output_dtype, else uint8.
        "QuantizeLinear" => {
            let to = cx.dtype(2).or_else(|| match cx.attr_i("output_dtype", 0) {
                0 => Some(DType::U8),
                code => DType::from_onnx(code as i32),
            });
            vec![Fact::new(to, same())]
        }
        "DequantizeLinear" => vec![Fact::new(cx.dtype(1), same())],
        "DynamicQuantizeLinear" => {
            vec![Fact::new(Some(DType::U8), same()), Fact::new(Some(DType::F32), Some(vec![])), Fact::new(Some(DType::U8), Some(vec![]))]
        }
        "QLinearMatMul" => vec![Fact::new(cx.dtype(7), matmul(cx, cx.shape(0), cx.shape(3))?)],
        "QLinearConv" => vec![Fact::new(cx.dtype(7), conv_w(cx, 3)?)],
        "MatMulInteger" => vec![Fact::new(Some(DType::I32), matmul(cx, cx.shape(0), cx.shape(1))?)],
        "ConvInteger" => vec![Fact::new(Some(DType::I32), conv_w(cx, 1)?)],
        _ => return Ok(None),
    }))
}
