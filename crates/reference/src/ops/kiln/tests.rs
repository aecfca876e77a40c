//! Each fused kernel against the unfused sequence of registered ai.onnx kernels it stands for.

use crate::{Kernel, OpCtx, OpError, Value, registry};
use kiln_ir::{Attr, Graph, Node};
use kiln_tensor::Tensor;

fn run_op(domain: &str, op: &str, opset: i64, attrs: &[(&str, Attr)], inputs: &[Option<&Tensor>]) -> Result<Tensor, OpError> {
    let node = Node {
        op_type: op.into(),
        domain: domain.into(),
        opset,
        attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        outputs: vec![None],
        ..Node::default()
    };
    let sub = |_: &Graph, _: Vec<Value>| -> Result<Vec<Value>, crate::ExecError> { Ok(vec![]) };
    let ctx = OpCtx { node: &node, subgraph: &sub };
    match registry().lookup(domain, op, opset) {
        Some(Kernel::Tensor(f)) => Ok(f(&ctx, inputs)?.remove(0)),
        _ => Err(OpError::Unsupported(format!("{domain}::{op} v{opset}"))),
    }
}

fn onnx(op: &str, attrs: &[(&str, Attr)], inputs: &[&Tensor]) -> Tensor {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    run_op("", op, 21, attrs, &ins).unwrap_or_else(|e| panic!("{op}: {e}"))
}

fn kiln(op: &str, attrs: &[(&str, Attr)], inputs: &[Option<&Tensor>]) -> Tensor {
    run_op("kiln", op, 1, attrs, inputs).unwrap_or_else(|e| panic!("kiln::{op}: {e}"))
}

/// Deterministic values in [-1, 1).
fn t(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(shape.to_vec(), v).unwrap_or_else(|e| panic!("{e}"))
}

fn s(v: &str) -> Attr {
    Attr::String(v.as_bytes().to_vec())
}

#[test]
fn fused_conv_is_conv_then_activation() {
    let (x, w, b) = (t(&[1, 2, 5, 5], 1), t(&[3, 2, 3, 3], 2), t(&[3], 3));
    let conv_attrs = [("pads", Attr::Ints(vec![1, 1, 1, 1])), ("strides", Attr::Ints(vec![2, 1]))];
    let y = onnx("Conv", &conv_attrs, &[&x, &w, &b]);
    let cases: Vec<(Vec<(&str, Attr)>, Tensor)> = vec![
        (vec![], y.clone()),
        (vec![("activation", s("relu"))], onnx("Relu", &[], &[&y])),
        (
            vec![("activation", s("leaky_relu")), ("activation_alpha", Attr::Float(0.2))],
            onnx("LeakyRelu", &[("alpha", Attr::Float(0.2))], &[&y]),
        ),
        (vec![("activation", s("hard_swish"))], onnx("HardSwish", &[], &[&y])),
        (vec![("activation", s("silu"))], onnx("Mul", &[], &[&y, &onnx("Sigmoid", &[], &[&y])])),
        (
            vec![("activation", s("clip")), ("activation_min", Attr::Float(0.0)), ("activation_max", Attr::Float(0.5))],
            onnx("Clip", &[], &[&y, &Tensor::scalar(0.0f32), &Tensor::scalar(0.5f32)]),
        ),
    ];
    for (act, want) in cases {
        let mut attrs = conv_attrs.to_vec();
        attrs.extend(act.iter().cloned());
        assert_eq!(kiln("FusedConv", &attrs, &[Some(&x), Some(&w), Some(&b)]), want, "{act:?}");
    }
}

#[test]
fn fused_matmul_is_matmul_add_or_gemm() {
    let (a, b, c) = (t(&[2, 3, 4], 4), t(&[4, 5], 5), t(&[5], 6));
    let y = onnx("Add", &[], &[&onnx("MatMul", &[], &[&a, &b]), &c]);
    let gelu = onnx("Gelu", &[("approximate", s("tanh"))], &[&y]);
    let got = kiln("FusedMatMul", &[("activation", s("gelu")), ("activation_approximate", s("tanh"))], &[Some(&a), Some(&b), Some(&c)]);
    assert_eq!(got, gelu);
    let (a2, bt) = (t(&[3, 4], 7), t(&[5, 4], 8));
    let gemm_attrs = [("transB", Attr::Int(1)), ("alpha", Attr::Float(0.5))];
    let want = onnx("Sigmoid", &[], &[&onnx("Gemm", &gemm_attrs, &[&a2, &bt, &c])]);
    let mut attrs = gemm_attrs.to_vec();
    attrs.push(("activation", s("sigmoid")));
    assert_eq!(kiln("FusedMatMul", &attrs, &[Some(&a2), Some(&bt), Some(&c)]), want);
    assert!(run_op("kiln", "FusedMatMul", 1, &[("activation", s("swish"))], &[Some(&a), Some(&b)]).is_err());
}

#[test]
fn attention_is_the_unfused_sequence() {
    let (q, k, v) = (t(&[1, 2, 3, 4], 9), t(&[1, 2, 5, 4], 10), t(&[1, 2, 5, 6], 11));
    let mask = t(&[1, 1, 1, 5], 12);
    let kt = onnx("Transpose", &[("perm", Attr::Ints(vec![0, 1, 3, 2]))], &[&k]);
    let scores = onnx("MatMul", &[], &[&q, &kt]);
    let scaled = onnx("Mul", &[], &[&scores, &Tensor::scalar(0.5f32)]);
    let masked = onnx("Add", &[], &[&scaled, &mask]);
    let want = onnx("MatMul", &[], &[&onnx("Softmax", &[("axis", Attr::Int(-1))], &[&masked]), &v]);
    let got = kiln("Attention", &[("scale", Attr::Float(0.5))], &[Some(&q), Some(&k), Some(&v), Some(&mask)]);
    assert_eq!(got, want);
    let got =
        kiln("Attention", &[("scale", Attr::Float(0.5)), ("k_transposed", Attr::Int(1))], &[Some(&q), Some(&kt), Some(&v), Some(&mask)]);
    assert_eq!(got, want);
    let plain = onnx("MatMul", &[], &[&onnx("Softmax", &[("axis", Attr::Int(-1))], &[&scores]), &v]);
    assert_eq!(kiln("Attention", &[], &[Some(&q), Some(&k), Some(&v)]), plain);
}

#[test]
fn attention_with_heads_in_columns_is_split_attend_merge() {
    // Q [1, 3, 2*4], K [1, 5, 2*4], V [1, 5, 2*6]: two heads side by side in the last axis.
    let (q, k, v, mask) = (t(&[1, 3, 8], 21), t(&[1, 5, 8], 22), t(&[1, 5, 12], 23), t(&[1, 1, 1, 5], 24));
    let heads = |x: &Tensor| {
        let shape = Tensor::from_vec(vec![4], vec![0i64, 0, 2, -1]).unwrap();
        let x4 = onnx("Reshape", &[], &[x, &shape]);
        onnx("Transpose", &[("perm", Attr::Ints(vec![0, 2, 1, 3]))], &[&x4])
    };
    let attrs = [("scale", Attr::Float(0.5))];
    let o4 = kiln("Attention", &attrs, &[Some(&heads(&q)), Some(&heads(&k)), Some(&heads(&v)), Some(&mask)]);
    let o = onnx("Transpose", &[("perm", Attr::Ints(vec![0, 2, 1, 3]))], &[&o4]);
    let want = onnx("Reshape", &[], &[&o, &Tensor::from_vec(vec![3], vec![1i64, 3, 12]).unwrap()]);
    let with_heads = [("scale", Attr::Float(0.5)), ("num_heads", Attr::Int(2))];
    assert_eq!(kiln("Attention", &with_heads, &[Some(&q), Some(&k), Some(&v), Some(&mask)]), want);
    // Packed: Q, K, V as column ranges of one [1, 5, 3*8] tensor.
    let (q, k, v) = (t(&[1, 5, 8], 25), t(&[1, 5, 8], 26), t(&[1, 5, 8], 27));
    let qkv = onnx("Concat", &[("axis", Attr::Int(-1))], &[&q, &k, &v]);
    let want = kiln("Attention", &with_heads, &[Some(&q), Some(&k), Some(&v), Some(&mask)]);
    assert_eq!(kiln("Attention", &with_heads, &[Some(&qkv), None, None, Some(&mask)]), want);
    assert!(run_op("kiln", "Attention", 1, &with_heads, &[Some(&qkv), Some(&k), None]).is_err());
    let transposed = [("num_heads", Attr::Int(2)), ("k_transposed", Attr::Int(1))];
    assert!(run_op("kiln", "Attention", 1, &transposed, &[Some(&q), Some(&k), Some(&v)]).is_err());
    assert!(run_op("kiln", "Attention", 1, &[("num_heads", Attr::Int(3))], &[Some(&q), Some(&k), Some(&v)]).is_err());
}

#[test]
fn q_matmul_is_dq_q_then_matmul_add_activation() {
    let (a, bias) = (t(&[2, 3, 4], 13), t(&[5], 14));
    let wq = Tensor::from_vec(vec![4, 5], (0..20).map(|i| (i * 13 % 200 - 100) as i8).collect::<Vec<i8>>()).unwrap();
    let ws = Tensor::from_vec(vec![5], vec![0.01f32, 0.02, 0.005, 0.03, 0.015]).unwrap();
    let wd = onnx("DequantizeLinear", &[("axis", Attr::Int(1))], &[&wq, &ws]);
    // Static, asymmetric u8 activation.
    let (xs, xz) = (Tensor::scalar(0.01f32), Tensor::scalar(128u8));
    let xd = onnx("DequantizeLinear", &[], &[&onnx("QuantizeLinear", &[], &[&a, &xs, &xz]), &xs, &xz]);
    let want = onnx("Relu", &[], &[&onnx("Add", &[], &[&onnx("MatMul", &[], &[&xd, &wd]), &bias])]);
    let got = kiln("QMatMul", &[("activation", s("relu"))], &[Some(&a), Some(&xs), Some(&xz), Some(&wq), Some(&ws), None, Some(&bias)]);
    assert_eq!(got, want);
    // Dynamic: DynamicQuantizeLinear's parameters; no bias, no activation.
    let dq = run_op_all("DynamicQuantizeLinear", &[&a]);
    let xd = onnx("DequantizeLinear", &[], &[&dq[0], &dq[1], &dq[2]]);
    let got = kiln("QMatMul", &[], &[Some(&a), None, None, Some(&wq), Some(&ws)]);
    assert_eq!(got, onnx("MatMul", &[], &[&xd, &wd]));
    // The static quantization actually rounds: the result is not the float product.
    assert_ne!(kiln("QMatMul", &[], &[Some(&a), Some(&xs), Some(&xz), Some(&wq), Some(&ws)]), onnx("MatMul", &[], &[&a, &wd]));
    assert!(run_op("kiln", "QMatMul", 1, &[], &[Some(&a), None, Some(&xz), Some(&wq), Some(&ws)]).is_err());
    let wf = t(&[4, 5], 15);
    assert!(run_op("kiln", "QMatMul", 1, &[], &[Some(&a), None, None, Some(&wf), Some(&ws)]).is_err());
}

#[test]
fn q_conv_is_dq_q_then_fused_conv() {
    let (x, bias) = (t(&[1, 2, 5, 5], 16), t(&[3], 17));
    let wq = Tensor::from_vec(vec![3, 2, 3, 3], (0..54).map(|i| (i * 29 % 240 - 120) as i8).collect::<Vec<i8>>()).unwrap();
    let ws = Tensor::from_vec(vec![3], vec![0.01f32, 0.004, 0.02]).unwrap();
    let wd = onnx("DequantizeLinear", &[("axis", Attr::Int(0))], &[&wq, &ws]);
    let (xs, xz) = (Tensor::scalar(0.008f32), Tensor::scalar(0i8));
    let xd = onnx("DequantizeLinear", &[], &[&onnx("QuantizeLinear", &[], &[&x, &xs, &xz]), &xs, &xz]);
    let attrs = [("pads", Attr::Ints(vec![1, 1, 1, 1])), ("activation", s("hard_swish"))];
    let want = kiln("FusedConv", &attrs, &[Some(&xd), Some(&wd), Some(&bias)]);
    assert_eq!(kiln("QConv", &attrs, &[Some(&x), Some(&xs), Some(&xz), Some(&wq), Some(&ws), None, Some(&bias)]), want);
}

fn run_op_all(op: &str, inputs: &[&Tensor]) -> Vec<Tensor> {
    let node = Node { op_type: op.into(), opset: 21, outputs: vec![None, None, None], ..Node::default() };
    let sub = |_: &Graph, _: Vec<Value>| -> Result<Vec<Value>, crate::ExecError> { Ok(vec![]) };
    let ctx = OpCtx { node: &node, subgraph: &sub };
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    match registry().lookup("", op, 21) {
        Some(Kernel::Tensor(f)) => f(&ctx, &ins).unwrap_or_else(|e| panic!("{op}: {e}")),
        _ => panic!("no {op}"),
    }
}

#[test]
fn w_matmul_is_cast_or_dq_then_matmul_add_activation() {
    use kiln_tensor::{DType, Data};
    let (a, bias) = (t(&[2, 3, 8], 30), t(&[5], 31));
    let cast = |x: &Tensor, to: DType| onnx("Cast", &[("to", Attr::Int(i64::from(to.to_onnx())))], &[x]);
    // fp16 / bf16 storage: a Cast of W; compute "bf16" also rounds the activation.
    let w = t(&[8, 5], 32);
    for dt in [DType::F16, DType::BF16] {
        let wl = cast(&w, dt);
        let wf = cast(&wl, DType::F32);
        let want = onnx("Relu", &[], &[&onnx("Add", &[], &[&onnx("MatMul", &[], &[&a, &wf]), &bias])]);
        assert_eq!(kiln("WMatMul", &[("activation", s("relu"))], &[Some(&a), Some(&wl), None, None, Some(&bias)]), want);
        let ab = cast(&cast(&a, DType::BF16), DType::F32);
        let got = kiln("WMatMul", &[("compute", s("bf16"))], &[Some(&a), Some(&wl)]);
        assert_eq!(got, onnx("MatMul", &[], &[&ab, &wf]));
        assert_ne!(got, onnx("MatMul", &[], &[&a, &wf]), "bf16 compute must round the activation");
    }
    // int4 group-wise: scales [ceil(K / 3), N] (a partial last group), zero points uint4.
    let w4 = Tensor::new(vec![8, 5], Data::U4((0..40).map(|i| (i * 7 % 16) as u8).collect())).unwrap();
    let ws = Tensor::from_vec(vec![3, 5], (0..15).map(|i| 0.01 + 0.003 * i as f32).collect::<Vec<f32>>()).unwrap();
    let wz = Tensor::new(vec![3, 5], Data::U4((0..15).map(|i| (i % 16) as u8).collect())).unwrap();
    let blocked = [("axis", Attr::Int(0)), ("block_size", Attr::Int(3))];
    let wd = onnx("DequantizeLinear", &blocked, &[&w4, &ws, &wz]);
    let got = kiln("WMatMul", &[("block_size", Attr::Int(3))], &[Some(&a), Some(&w4), Some(&ws), Some(&wz)]);
    assert_eq!(got, onnx("MatMul", &[], &[&a, &wd]));
    // int8 per column.
    let w8 = Tensor::from_vec(vec![8, 5], (0..40).map(|i| (i * 11 % 200 - 100) as i8).collect::<Vec<i8>>()).unwrap();
    let wc = Tensor::from_vec(vec![5], vec![0.01f32, 0.02, 0.005, 0.03, 0.015]).unwrap();
    let wd = onnx("DequantizeLinear", &[("axis", Attr::Int(1))], &[&w8, &wc]);
    assert_eq!(kiln("WMatMul", &[], &[Some(&a), Some(&w8), Some(&wc)]), onnx("MatMul", &[], &[&a, &wd]));
    // Refused: integer weights without scales, float weights with them, a 1-D blocked scale, f32 weights.
    let err = |ins: &[Option<&Tensor>], attrs: &[(&str, Attr)]| run_op("kiln", "WMatMul", 1, attrs, ins).is_err();
    assert!(err(&[Some(&a), Some(&w4)], &[]));
    assert!(err(&[Some(&a), Some(&cast(&w, DType::F16)), Some(&wc)], &[]));
    assert!(err(&[Some(&a), Some(&w8), Some(&wc)], &[("block_size", Attr::Int(4))]));
    assert!(err(&[Some(&a), Some(&w)], &[]));
    assert!(err(&[Some(&a), Some(&cast(&w, DType::F16))], &[("compute", s("fp8"))]));
}
