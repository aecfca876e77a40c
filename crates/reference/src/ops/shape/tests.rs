//! Edge cases of the shape family that the ONNX node tests do not reach: other dtypes,
//! strings, negative steps, pad modes, legacy opsets, and bad inputs that must fail cleanly.

use crate::registry::{Kernel, OpCtx, registry};
use crate::{ExecError, OpError, Value};
use kiln_ir::{Attr, Graph, Node, ValueId};
use kiln_tensor::{Data, Tensor};

type R = Result<(), OpError>;

/// Runs ai.onnx `op` at `opset` with attributes and inputs; `n_out` outputs are declared.
fn call(op: &str, opset: i64, attrs: &[(&str, Attr)], inputs: &[Option<&Tensor>], n_out: usize) -> Result<Vec<Tensor>, OpError> {
    let node = Node {
        op_type: op.into(),
        opset,
        attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        outputs: (0..n_out).map(|i| Some(ValueId(i))).collect(),
        ..Node::default()
    };
    let sub = |_: &Graph, _: Vec<Value>| -> Result<Vec<Value>, ExecError> { Ok(Vec::new()) };
    let ctx = OpCtx { node: &node, subgraph: &sub };
    match registry().lookup("", op, opset) {
        Some(Kernel::Tensor(f)) => f(&ctx, inputs),
        _ => Err(OpError::Unsupported(format!("{op} {opset}"))),
    }
}

fn one(op: &str, opset: i64, attrs: &[(&str, Attr)], inputs: &[&Tensor]) -> Result<Tensor, OpError> {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    call(op, opset, attrs, &ins, 1)?.into_iter().next().ok_or_else(|| OpError::Invalid("no output".into()))
}

fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap_or_else(|_| Tensor::scalar(0i64))
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap_or_else(|_| Tensor::scalar(0f32))
}

fn strs(shape: &[usize], v: &[&str]) -> Tensor {
    Tensor::new(shape.to_vec(), Data::String(v.iter().map(|s| s.to_string()).collect())).unwrap_or_else(|_| Tensor::scalar(0u8))
}

fn s(v: &str) -> Attr {
    Attr::String(v.as_bytes().to_vec())
}

#[test]
fn slice_negative_steps_and_clamping() -> R {
    let x = i64s(&[10], &(0..10).collect::<Vec<_>>());
    let y = one("Slice", 13, &[], &[&x, &i64s(&[1], &[-1]), &i64s(&[1], &[i64::MIN]), &i64s(&[1], &[0]), &i64s(&[1], &[-3])])?;
    assert_eq!(y.as_slice::<i64>()?, &[9, 6, 3, 0]);
    let y = one("Slice", 13, &[], &[&x, &i64s(&[1], &[20]), &i64s(&[1], &[-100]), &i64s(&[1], &[0]), &i64s(&[1], &[-4])])?;
    assert_eq!(y.as_slice::<i64>()?, &[9, 5, 1]);
    let y = one("Slice", 1, &[("starts", Attr::Ints(vec![2])), ("ends", Attr::Ints(vec![1000]))], &[&x])?;
    assert_eq!(y.len(), 8);
    assert!(one("Slice", 13, &[], &[&x, &i64s(&[1], &[0]), &i64s(&[1], &[5]), &i64s(&[1], &[0]), &i64s(&[1], &[0])]).is_err());
    Ok(())
}

#[test]
fn pad_modes() -> R {
    let x = i64s(&[3], &[1, 2, 3]);
    let pads = i64s(&[2], &[2, 2]);
    for (mode, want) in [("reflect", [3, 2, 1, 2, 3, 2, 1]), ("edge", [1, 1, 1, 2, 3, 3, 3]), ("wrap", [2, 3, 1, 2, 3, 1, 2])] {
        let y = one("Pad", 19, &[("mode", s(mode))], &[&x, &pads])?;
        assert_eq!(y.as_slice::<i64>()?, &want, "{mode}");
    }
    let y = one("Pad", 19, &[], &[&x, &i64s(&[2], &[-1, 1]), &Tensor::scalar(9i64)])?;
    assert_eq!(y.as_slice::<i64>()?, &[2, 3, 9]);
    // A crop applies before wrapping: [1, 2, 3] cropped to [2, 3], then wrapped by 2 -> 2, 3.
    let y = one("Pad", 19, &[("mode", s("wrap"))], &[&x, &i64s(&[2], &[-1, 2])])?;
    assert_eq!(y.as_slice::<i64>()?, &[2, 3, 2, 3]);
    let y = one("Pad", 19, &[("mode", s("reflect"))], &[&x, &i64s(&[2], &[2, -1])])?;
    assert_eq!(y.as_slice::<i64>()?, &[1, 2, 1, 2]);
    let y = one("Pad", 2, &[("pads", Attr::Ints(vec![1, 0])), ("value", Attr::Float(1.5))], &[&f32s(&[1], &[4.0])])?;
    assert_eq!(y.as_slice::<f32>()?, &[1.5, 4.0]);
    let y = one("Pad", 19, &[], &[&strs(&[1], &["a"]), &i64s(&[2], &[1, 0])])?;
    assert_eq!(y.data(), &Data::String(vec![String::new(), "a".into()]));
    Ok(())
}

#[test]
fn strings_move_like_numbers() -> R {
    let x = strs(&[2, 2], &["a", "b", "c", "d"]);
    assert_eq!(one("Transpose", 13, &[], &[&x])?, strs(&[2, 2], &["a", "c", "b", "d"]));
    assert_eq!(one("Concat", 13, &[("axis", Attr::Int(1))], &[&x, &x])?, strs(&[2, 4], &["a", "b", "a", "b", "c", "d", "c", "d"]));
    assert_eq!(one("Gather", 13, &[("axis", Attr::Int(1))], &[&x, &i64s(&[1], &[-1])])?, strs(&[2, 1], &["b", "d"]));
    assert_eq!(one("Reshape", 13, &[], &[&x, &i64s(&[1], &[-1])])?, strs(&[4], &["a", "b", "c", "d"]));
    let u = call("Unique", 11, &[], &[Some(&strs(&[4], &["b", "a", "b", "c"]))], 4)?;
    assert_eq!(u[0], strs(&[3], &["a", "b", "c"]));
    assert_eq!(u[2].as_slice::<i64>()?, &[1, 0, 1, 2]);
    Ok(())
}

#[test]
fn top_k_ties_keep_index_order() -> R {
    let x = f32s(&[5], &[1.0, 3.0, 3.0, 2.0, 1.0]);
    let out = call("TopK", 11, &[], &[Some(&x), Some(&i64s(&[1], &[2]))], 2)?;
    assert_eq!(out[0].as_slice::<f32>()?, &[3.0, 3.0]);
    assert_eq!(out[1].as_slice::<i64>()?, &[1, 2]);
    let out = call("TopK", 11, &[("largest", Attr::Int(0))], &[Some(&x), Some(&i64s(&[1], &[3]))], 2)?;
    assert_eq!(out[1].as_slice::<i64>()?, &[0, 4, 3]);
    let out = call("TopK", 1, &[("k", Attr::Int(1))], &[Some(&x)], 2)?;
    assert_eq!(out[1].as_slice::<i64>()?, &[1]);
    Ok(())
}

#[test]
fn reshape_rules() -> R {
    let x = f32s(&[2, 3, 4], &[0.0; 24]);
    assert_eq!(one("Reshape", 14, &[], &[&x, &i64s(&[3], &[0, -1, 2])])?.shape(), &[2, 6, 2]);
    assert_eq!(one("Reshape", 1, &[("shape", Attr::Ints(vec![4, -1]))], &[&x])?.shape(), &[4, 6]);
    assert!(one("Reshape", 14, &[], &[&x, &i64s(&[2], &[-1, -1])]).is_err());
    assert!(one("Reshape", 14, &[], &[&x, &i64s(&[1], &[5])]).is_err());
    let empty = f32s(&[0, 3], &[]);
    let y = one("Reshape", 14, &[("allowzero", Attr::Int(1))], &[&empty, &i64s(&[2], &[3, 0])])?;
    assert_eq!(y.shape(), &[3, 0]);
    Ok(())
}

#[test]
fn squeeze_unsqueeze_attribute_and_input_forms() -> R {
    let x = f32s(&[1, 2, 1], &[1.0, 2.0]);
    assert_eq!(one("Squeeze", 11, &[("axes", Attr::Ints(vec![-1]))], &[&x])?.shape(), &[1, 2]);
    assert_eq!(one("Squeeze", 13, &[], &[&x, &i64s(&[1], &[0])])?.shape(), &[2, 1]);
    assert_eq!(one("Squeeze", 13, &[], &[&x])?.shape(), &[2]);
    assert!(one("Squeeze", 13, &[], &[&x, &i64s(&[1], &[1])]).is_err());
    assert_eq!(one("Unsqueeze", 11, &[("axes", Attr::Ints(vec![0, 4]))], &[&x])?.shape(), &[1, 1, 2, 1, 1]);
    assert_eq!(one("Unsqueeze", 13, &[], &[&Tensor::scalar(1f32), &i64s(&[1], &[-1])])?.shape(), &[1]);
    Ok(())
}

#[test]
fn scalars_have_no_axis() {
    let x = Tensor::scalar(1f32);
    assert!(one("Gather", 13, &[], &[&x, &i64s(&[], &[0])]).is_err());
    assert!(one("Concat", 13, &[("axis", Attr::Int(0))], &[&x, &x]).is_err());
    assert!(call("Split", 13, &[], &[Some(&x)], 2).is_err());
    assert!(one("Compress", 11, &[("axis", Attr::Int(0))], &[&x, &Tensor::scalar(true)]).is_err());
    assert!(call("Unique", 11, &[("axis", Attr::Int(0))], &[Some(&x)], 4).is_err());
    assert!(call("TopK", 11, &[], &[Some(&x), Some(&i64s(&[1], &[1]))], 2).is_err());
}

#[test]
fn bad_indices_fail_cleanly() {
    let x = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert!(one("Gather", 13, &[], &[&x, &i64s(&[1], &[2])]).is_err());
    assert!(one("GatherElements", 13, &[], &[&x, &i64s(&[1, 1], &[-3])]).is_err());
    assert!(one("GatherND", 13, &[], &[&x, &i64s(&[1, 3], &[0, 0, 0])]).is_err());
    assert!(one("ScatterElements", 13, &[], &[&x, &i64s(&[1, 1], &[5]), &f32s(&[1, 1], &[0.0])]).is_err());
    assert!(one("ScatterND", 13, &[], &[&x, &i64s(&[1, 1], &[2]), &f32s(&[1, 2], &[0.0, 0.0])]).is_err());
    assert!(one("Expand", 13, &[], &[&x, &i64s(&[1], &[3])]).is_err());
    assert!(one("Tile", 13, &[], &[&x, &i64s(&[1], &[2])]).is_err());
}

#[test]
fn scatter_reductions_on_integers() -> R {
    let x = Tensor::from_vec(vec![3], vec![100i8, 1, 5])?;
    let ind = i64s(&[3], &[0, 0, 2]);
    let upd = Tensor::from_vec(vec![3], vec![20i8, 10, -7])?;
    let y = one("ScatterElements", 18, &[("reduction", s("add"))], &[&x, &ind, &upd])?;
    assert_eq!(y.as_slice::<i8>()?, &[-126, 1, -2], "i8 addition wraps");
    let y = one("ScatterElements", 18, &[("reduction", s("max"))], &[&x, &ind, &upd])?;
    assert_eq!(y.as_slice::<i8>()?, &[100, 1, 5]);
    let y = one("Scatter", 9, &[], &[&x, &ind, &upd])?;
    assert_eq!(y.as_slice::<i8>()?, &[10, 1, -7], "later updates win");
    Ok(())
}

#[test]
fn range_and_split_forms() -> R {
    let y = one("Range", 11, &[], &[&Tensor::scalar(10i32), &Tensor::scalar(1i32), &Tensor::scalar(-4i32)])?;
    assert_eq!(y.as_slice::<i32>()?, &[10, 6, 2]);
    let y = one("Range", 11, &[], &[&Tensor::scalar(0i64), &Tensor::scalar(5i64), &Tensor::scalar(-1i64)])?;
    assert_eq!(y.len(), 0);
    let x = i64s(&[5], &[1, 2, 3, 4, 5]);
    let parts = call("Split", 18, &[("num_outputs", Attr::Int(2))], &[Some(&x)], 2)?;
    assert_eq!(parts[0].as_slice::<i64>()?, &[1, 2, 3]);
    assert_eq!(parts[1].as_slice::<i64>()?, &[4, 5]);
    let parts = call("Split", 11, &[("split", Attr::Ints(vec![1, 4]))], &[Some(&x)], 2)?;
    assert_eq!(parts[1].len(), 4);
    assert!(call("Split", 13, &[], &[Some(&x)], 2).is_err(), "5 does not split evenly in 2");
    Ok(())
}

#[test]
fn resize_legacy_forms() -> R {
    let x = f32s(&[1, 2], &[1.0, 2.0]);
    let y = one("Resize", 10, &[], &[&x, &f32s(&[2], &[1.0, 3.0])])?;
    assert_eq!(y.as_slice::<f32>()?, &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    let y = one("Upsample", 7, &[("scales", Attr::Floats(vec![1.0, 2.0])), ("mode", s("linear"))], &[&x])?;
    assert_eq!(y.as_slice::<f32>()?, &[1.0, 1.5, 2.0, 2.0]);
    let y = one("Upsample", 9, &[], &[&i64s(&[2], &[3, 7]), &f32s(&[1], &[2.0])])?;
    assert_eq!(y.as_slice::<i64>()?, &[3, 3, 7, 7], "nearest moves integers exactly");
    // Linear on integers truncates toward zero, as onnxruntime does (0.75 -> 0, -2.25 -> -2).
    let y =
        one("Resize", 13, &[("mode", s("linear"))], &[&Tensor::from_vec(vec![2], vec![0u8, 3])?, &f32s(&[0], &[]), &f32s(&[1], &[2.0])])?;
    assert_eq!(y.as_slice::<u8>()?, &[0, 0, 2, 3]);
    let y =
        one("Resize", 13, &[("mode", s("linear"))], &[&Tensor::from_vec(vec![2], vec![-3i32, 0])?, &f32s(&[0], &[]), &f32s(&[1], &[2.0])])?;
    assert_eq!(y.as_slice::<i32>()?, &[-3, -2, 0, 0]);
    // Scales that leave every length as it is (3 x 1.3 -> 3) pass the input through.
    let x3 = f32s(&[3], &[0.0, 1.0, 4.0]);
    let y = one("Resize", 13, &[("mode", s("linear"))], &[&x3, &f32s(&[0], &[]), &f32s(&[1], &[1.3])])?;
    assert_eq!(y.as_slice::<f32>()?, &[0.0, 1.0, 4.0]);
    // Coordinates in f32: 3 / 0.6f32 is exactly 5 there (4.9999998 in f64), so nearest-floor
    // reads x[5], as onnxruntime does.
    let x7 = f32s(&[7], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = one(
        "Resize",
        13,
        &[("mode", s("nearest")), ("coordinate_transformation_mode", s("asymmetric")), ("nearest_mode", s("floor"))],
        &[&x7, &f32s(&[0], &[]), &f32s(&[1], &[0.6])],
    )?;
    assert_eq!(y.as_slice::<f32>()?, &[0.0, 1.0, 3.0, 5.0]);
    Ok(())
}

#[test]
fn constant_forms() -> R {
    assert_eq!(one("Constant", 13, &[("value_ints", Attr::Ints(vec![1, 2]))], &[])?, i64s(&[2], &[1, 2]));
    assert_eq!(one("Constant", 13, &[("value_float", Attr::Float(2.5))], &[])?, Tensor::scalar(2.5f32));
    assert_eq!(one("Constant", 13, &[("value_string", s("hi"))], &[])?, strs(&[], &["hi"]));
    assert!(one("Constant", 13, &[], &[]).is_err());
    let y = one("ConstantOfShape", 9, &[("value", Attr::Tensor(Tensor::scalar(7i32)))], &[&i64s(&[2], &[2, 1])])?;
    assert_eq!(y.as_slice::<i32>()?, &[7, 7]);
    Ok(())
}
