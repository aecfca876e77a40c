//! Unit tests for semantics the ONNX node cases do not reach: integer types, old opsets,
//! edge cases. Each runs one registered kernel on hand-made tensors.

use crate::{Kernel, OpCtx, OpError, Value, registry};
use kiln_ir::{Attr, Graph, Node};
use kiln_tensor::{Tensor, bf16, f16};

fn run_op(op: &str, opset: i64, attrs: &[(&str, Attr)], inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let node = Node {
        op_type: op.into(),
        opset,
        attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        outputs: vec![None],
        ..Node::default()
    };
    let sub = |_: &Graph, _: Vec<Value>| -> Result<Vec<Value>, crate::ExecError> { Ok(vec![]) };
    let ctx = OpCtx { node: &node, subgraph: &sub };
    match registry().lookup("", op, opset) {
        Some(Kernel::Tensor(f)) => f(&ctx, inputs),
        _ => Err(OpError::Unsupported(format!("{op} v{opset}"))),
    }
}

fn one(op: &str, opset: i64, attrs: &[(&str, Attr)], inputs: &[&Tensor]) -> Tensor {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    match run_op(op, opset, attrs, &ins) {
        Ok(mut v) if !v.is_empty() => v.remove(0),
        other => panic!("{op} failed: {other:?}"),
    }
}

fn t<T: kiln_tensor::Elem>(shape: &[usize], v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn integer_div_truncates_and_mod_follows_divisor() {
    let a = t(&[4], vec![7i32, -7, 7, -7]);
    let b = t(&[4], vec![2i32, 2, -2, -2]);
    assert_eq!(one("Div", 14, &[], &[&a, &b]), t(&[4], vec![3i32, -3, -3, 3]));
    assert_eq!(one("Mod", 13, &[], &[&a, &b]), t(&[4], vec![1i32, 1, -1, -1]));
    assert_eq!(one("Mod", 13, &[("fmod", Attr::Int(1))], &[&a, &b]), t(&[4], vec![1i32, -1, 1, -1]));
    let zero = t(&[1], vec![0i32]);
    assert!(run_op("Div", 14, &[], &[Some(&a), Some(&zero)]).is_err());
}

#[test]
fn integer_arithmetic_wraps() {
    let a = t(&[2], vec![250u8, 3]);
    let b = t(&[2], vec![10u8, 5]);
    assert_eq!(one("Add", 14, &[], &[&a, &b]), t(&[2], vec![4u8, 8]));
    assert_eq!(one("Sub", 14, &[], &[&b, &a]), t(&[2], vec![16u8, 2]));
    let big = t(&[1], vec![u64::MAX]);
    assert_eq!(one("Mul", 14, &[], &[&big, &big]), t(&[1], vec![1u64]));
}

#[test]
fn pow_mixed_types() {
    let base = t(&[3], vec![2i64, 3, -2]);
    let e = t(&[3], vec![3i32, 2, 3]);
    assert_eq!(one("Pow", 15, &[], &[&base, &e]), t(&[3], vec![8i64, 9, -8]));
    let ef = t(&[1], vec![0.5f32]);
    let x = t(&[2], vec![4.0f64, 9.0]);
    assert_eq!(one("Pow", 15, &[], &[&x, &ef]), t(&[2], vec![2.0f64, 3.0]));
}

#[test]
fn legacy_broadcast_axis() {
    let a = t(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = t(&[2], vec![10.0f32, 20.0]);
    let attrs = [("broadcast", Attr::Int(1)), ("axis", Attr::Int(0))];
    assert_eq!(one("Add", 6, &attrs, &[&a, &b]), t(&[2, 3], vec![11.0f32, 12.0, 13.0, 24.0, 25.0, 26.0]));
}

#[test]
fn bit_shift_and_bitwise() {
    let x = t(&[3], vec![1u8, 128, 255]);
    let s = t(&[3], vec![7u8, 1, 8]);
    assert_eq!(one("BitShift", 11, &[("direction", Attr::String(b"LEFT".to_vec()))], &[&x, &s]), t(&[3], vec![128u8, 0, 0]));
    assert_eq!(one("BitShift", 11, &[("direction", Attr::String(b"RIGHT".to_vec()))], &[&x, &s]), t(&[3], vec![0u8, 64, 0]));
    let a = t(&[2], vec![-1i16, 6]);
    assert_eq!(one("BitwiseNot", 18, &[], &[&a]), t(&[2], vec![0i16, -7]));
}

#[test]
fn clip_forms() {
    let x = t(&[4], vec![-5.0f32, 0.5, 5.0, f32::NAN]);
    let y = one("Clip", 6, &[("min", Attr::Float(-1.0)), ("max", Attr::Float(1.0))], &[&x]);
    let v = y.as_slice::<f32>().unwrap_or_default().to_vec();
    assert_eq!(&v[..3], &[-1.0, 0.5, 1.0]);
    assert!(v[3].is_nan());
    let xi = t(&[3], vec![-5i8, 2, 100]);
    let (lo, hi) = (t(&[], vec![-3i8]), t(&[], vec![50i8]));
    assert_eq!(one("Clip", 13, &[], &[&xi, &lo, &hi]), t(&[3], vec![-3i8, 2, 50]));
    let only_max = run_op("Clip", 13, &[], &[Some(&xi), None, Some(&hi)]).unwrap_or_default();
    assert_eq!(only_max.first(), Some(&t(&[3], vec![-5i8, 2, 50])));
}

#[test]
fn reductions_on_integers_and_old_axes() {
    let x = t(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]);
    let axes = [("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))];
    assert_eq!(one("ReduceSum", 11, &axes, &[&x]), t(&[2], vec![6i32, 15]));
    assert_eq!(one("ReduceProd", 13, &axes, &[&x]), t(&[2], vec![6i32, 120]));
    assert_eq!(one("ReduceMean", 13, &axes, &[&x]), t(&[2], vec![2i32, 5]));
    let ax = t(&[1], vec![0i64]);
    assert_eq!(one("ReduceMax", 18, &[], &[&x, &ax]), t(&[1, 3], vec![4i32, 5, 6]));
    let b = t(&[2, 2], vec![true, false, false, false]);
    assert_eq!(one("ReduceMax", 20, &[("keepdims", Attr::Int(0))], &[&b, &ax]), t(&[2], vec![true, false]));
}

#[test]
fn argmax_ties_and_last_index() {
    let x = t(&[1, 4], vec![1u16, 3, 3, 0]);
    let a = [("axis", Attr::Int(1))];
    assert_eq!(one("ArgMax", 13, &a, &[&x]), t(&[1, 1], vec![1i64]));
    let last = [("axis", Attr::Int(1)), ("select_last_index", Attr::Int(1)), ("keepdims", Attr::Int(0))];
    assert_eq!(one("ArgMax", 13, &last, &[&x]), t(&[1], vec![2i64]));
    assert_eq!(one("ArgMin", 13, &last, &[&x]), t(&[1], vec![3i64]));
}

#[test]
fn softmax_coerces_to_2d_before_13() {
    let x = t(&[1, 2, 2], vec![0.0f32, 0.0, 0.0, 0.0]);
    // Opset 11, axis 1: one row of 4 values, each 1/4; opset 13: along the last axis, 1/2.
    assert_eq!(one("Softmax", 11, &[], &[&x]), t(&[1, 2, 2], vec![0.25f32; 4]));
    assert_eq!(one("Softmax", 13, &[], &[&x]), t(&[1, 2, 2], vec![0.5f32; 4]));
}

#[test]
fn half_types_compute_in_f64() {
    let x = t(&[2], vec![f16::from_f32(4.0), f16::from_f32(0.25)]);
    assert_eq!(one("Sqrt", 13, &[], &[&x]), t(&[2], vec![f16::from_f32(2.0), f16::from_f32(0.5)]));
    let y = t(&[1], vec![bf16::from_f32(-2.5)]);
    assert_eq!(one("Round", 11, &[], &[&y]), t(&[1], vec![bf16::from_f32(-2.0)]));
}

#[test]
fn where_strings_and_cumsum() {
    let c = t(&[2], vec![true, false]);
    let a = Tensor::new(vec![2], kiln_tensor::Data::String(vec!["a".into(), "b".into()])).unwrap_or_else(|e| panic!("{e}"));
    let b = Tensor::new(vec![1], kiln_tensor::Data::String(vec!["z".into()])).unwrap_or_else(|e| panic!("{e}"));
    let w = one("Where", 16, &[], &[&c, &a, &b]);
    assert_eq!(w.data(), &kiln_tensor::Data::String(vec!["a".into(), "z".into()]));
    let x = t(&[2, 2], vec![1u32, 2, 3, 4]);
    let ax = t(&[], vec![1i32]);
    let attrs = [("exclusive", Attr::Int(1)), ("reverse", Attr::Int(1))];
    assert_eq!(one("CumSum", 14, &attrs, &[&x, &ax]), t(&[2, 2], vec![2u32, 0, 4, 0]));
}

#[test]
fn cast_to_by_name_before_opset_6() {
    let x = t(&[2], vec![1.7f32, -2.5]);
    assert_eq!(one("Cast", 1, &[("to", Attr::String(b"INT32".to_vec()))], &[&x]), t(&[2], vec![1i32, -2]));
    assert_eq!(one("Cast", 13, &[("to", Attr::Int(11))], &[&x]), t(&[2], vec![1.7f32 as f64, -2.5]));
}
