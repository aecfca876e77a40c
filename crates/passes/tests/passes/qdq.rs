use crate::build::*;
use kiln_passes::{Dce, FuseActivation, FuseQdq, InferShapes};
use kiln_tensor::Tensor;

fn i8s(b: &mut B, name: &str, shape: &[usize], seed: u64) -> kiln_ir::ValueId {
    let n: usize = shape.iter().product();
    let v: Vec<i8> = values(n, seed).iter().map(|x| (x * 127.0) as i8).collect();
    b.init(name, Tensor::from_vec(shape.to_vec(), v).expect("tensor"))
}

fn passes() -> Vec<Box<dyn kiln_passes::Pass>> {
    vec![Box::new(InferShapes::default()), Box::new(FuseQdq), Box::new(FuseActivation), Box::new(Dce::default())]
}

/// Static QDQ MatMul + bias + Relu, a dynamic one sharing nothing, and a transB Gemm with
/// alpha and a bias; each becomes one kiln::QMatMul reading the float activation.
#[test]
fn qdq_matmul_and_gemm_become_qmatmul() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,4]");
    let (s, zp) = (b.scalar("s", 0.02), b.init("zp", Tensor::scalar(128u8)));
    let q = b.op("xq", "QuantizeLinear", &[x, s, zp], vec![]);
    let xd = b.op("xd", "DequantizeLinear", &[q, s, zp], vec![]);
    let w = i8s(&mut b, "w", &[4, 3], 1);
    let ws = b.f32s("ws", &[3], &[0.01, 0.02, 0.03]);
    let wd = b.op("wd", "DequantizeLinear", &[w, ws], vec![("axis", int(1))]);
    let mm = b.op("mm", "MatMul", &[xd, wd], vec![]);
    let bias = b.rand("bias", &[3], 2);
    let add = b.op("add", "Add", &[mm, bias], vec![]);
    let relu = b.op("relu", "Relu", &[add], vec![]);
    // Dynamic, into a transB Gemm.
    let dq = b.op_n(&["yq", "ys", "yzp"], "DynamicQuantizeLinear", &[relu], vec![]);
    let yd = b.op("yd", "DequantizeLinear", &[dq[0], dq[1], dq[2]], vec![]);
    let w2 = i8s(&mut b, "w2", &[2, 3], 3);
    let w2s = b.scalar("w2s", 0.05);
    let w2d = b.op("w2d", "DequantizeLinear", &[w2, w2s], vec![]);
    let c = b.f32s("c", &[2], &[0.5, -0.5]);
    let gemm = b.op("gemm", "Gemm", &[yd, w2d, c], vec![("transB", int(1)), ("alpha", float(2.0)), ("beta", float(0.5))]);
    b.output(gemm);
    let m = b.model();
    let (text, after) = before_after(&m, passes());
    same_outputs(&m, &after, &[("x", &[5, 4])], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,4]
      init %s = f32[] [0.019999999552965164]
      init %zp = u8[] [128]
      init %w = i8[4,3] <12 values>
      init %ws = f32[3] [0.009999999776482582, 0.019999999552965164, 0.029999999329447746]
      init %bias = f32[3] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905]
      init %w2 = i8[2,3] [-73, 98, 84, 45, -12, -72]
      init %w2s = f32[] [0.05000000074505806]
      init %c = f32[2] [0.5, -0.5]
      %xq: ?[?] = QuantizeLinear(%x, %s, %zp)
      %xd: ?[?] = DequantizeLinear(%xq, %s, %zp)
      %wd: ?[?] = DequantizeLinear(%w, %ws) {axis=1}
      %mm: ?[?] = MatMul(%xd, %wd)
      %add: ?[?] = Add(%mm, %bias)
      %relu: ?[?] = Relu(%add)
      %yq: ?[?], %ys: ?[?], %yzp: ?[?] = DynamicQuantizeLinear(%relu)
      %yd: ?[?] = DequantizeLinear(%yq, %ys, %yzp)
      %w2d: ?[?] = DequantizeLinear(%w2, %w2s)
      %gemm: ?[?] = Gemm(%yd, %w2d, %c) {alpha=2.0, beta=0.5, transB=1}
      output %gemm: ?[?]
    }
    --- infer-shapes, fuse-qdq, fuse-activation, dce --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[N,4]
      init %s = f32[] [0.019999999552965164]
      init %zp = u8[] [128]
      init %w = i8[4,3] <12 values>
      init %ws = f32[3] [0.009999999776482582, 0.019999999552965164, 0.029999999329447746]
      init %w2_kn = i8[3,2] [-73, 45, 98, -12, 84, -72]
      init %w2s_alpha = f32[] [0.10000000149011612]
      init %c_bias = f32[2] [0.25, -0.25]
      init %mm_bias = f32[3] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905]
      %relu: f32[N,3] = kiln::QMatMul(%x, %s, %zp, %w, %ws, _, %mm_bias) {activation="relu"}
      %gemm: f32[N,2] = kiln::QMatMul(%relu, _, _, %w2_kn, %w2s_alpha, _, %c_bias)
      output %gemm: f32[N,2]
    }
    "#);
}

/// QDQ Conv (per-channel weights, i8 activation) + Relu -> kiln::QConv; a QLinearConv with an
/// int32 bias -> DequantizeLinear, kiln::QConv, QuantizeLinear.
#[test]
fn qdq_conv_and_qlinearconv_become_qconv() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,2,5,5]");
    let (s, zp) = (b.scalar("s", 0.01), b.init("zp", Tensor::scalar(0i8)));
    let q = b.op("xq", "QuantizeLinear", &[x, s, zp], vec![]);
    let xd = b.op("xd", "DequantizeLinear", &[q, s, zp], vec![]);
    let w = i8s(&mut b, "w", &[3, 2, 3, 3], 4);
    let ws = b.f32s("ws", &[3], &[0.01, 0.02, 0.005]);
    let wd = b.op("wd", "DequantizeLinear", &[w, ws], vec![("axis", int(0))]);
    let conv = b.op("conv", "Conv", &[xd, wd], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let relu = b.op("relu", "Relu", &[conv], vec![]);
    // QLinearConv on the u8-quantized Relu output.
    let (s2, zp2) = (b.scalar("s2", 0.03), b.init("zp2", Tensor::scalar(0u8)));
    let rq = b.op("rq", "QuantizeLinear", &[relu, s2, zp2], vec![]);
    let w2 = i8s(&mut b, "w2", &[2, 3, 1, 1], 5);
    let (w2s, w2zp) = (b.scalar("w2s", 0.02), b.init("w2zp", Tensor::scalar(0i8)));
    let (ys, yzp) = (b.scalar("ys", 0.05), b.init("yzp", Tensor::scalar(10u8)));
    let bias = b.init("b2", Tensor::from_vec(vec![2], vec![100i32, -50]).expect("tensor"));
    let ql = b.op("ql", "QLinearConv", &[rq, s2, zp2, w2, w2s, w2zp, ys, yzp, bias], vec![]);
    let out = b.op("out", "DequantizeLinear", &[ql, ys, yzp], vec![]);
    b.output(out);
    let m = b.model();
    let (text, after) = before_after(&m, passes());
    same_outputs(&m, &after, &[], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,2,5,5]
      init %s = f32[] [0.009999999776482582]
      init %zp = i8[] [0]
      init %w = i8[3,2,3,3] <54 values>
      init %ws = f32[3] [0.009999999776482582, 0.019999999552965164, 0.004999999888241291]
      init %s2 = f32[] [0.029999999329447746]
      init %zp2 = u8[] [0]
      init %w2 = i8[2,3,1,1] [101, 51, 106, 36, -56, -103]
      init %w2s = f32[] [0.019999999552965164]
      init %w2zp = i8[] [0]
      init %ys = f32[] [0.05000000074505806]
      init %yzp = u8[] [10]
      init %b2 = i32[2] [100, -50]
      %xq: ?[?] = QuantizeLinear(%x, %s, %zp)
      %xd: ?[?] = DequantizeLinear(%xq, %s, %zp)
      %wd: ?[?] = DequantizeLinear(%w, %ws) {axis=0}
      %conv: ?[?] = Conv(%xd, %wd) {pads=[1,1,1,1]}
      %relu: ?[?] = Relu(%conv)
      %rq: ?[?] = QuantizeLinear(%relu, %s2, %zp2)
      %ql: ?[?] = QLinearConv(%rq, %s2, %zp2, %w2, %w2s, %w2zp, %ys, %yzp, %b2)
      %out: ?[?] = DequantizeLinear(%ql, %ys, %yzp)
      output %out: ?[?]
    }
    --- infer-shapes, fuse-qdq, fuse-activation, dce --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[1,2,5,5]
      init %s = f32[] [0.009999999776482582]
      init %zp = i8[] [0]
      init %w = i8[3,2,3,3] <54 values>
      init %ws = f32[3] [0.009999999776482582, 0.019999999552965164, 0.004999999888241291]
      init %s2 = f32[] [0.029999999329447746]
      init %zp2 = u8[] [0]
      init %w2 = i8[2,3,1,1] [101, 51, 106, 36, -56, -103]
      init %w2s = f32[] [0.019999999552965164]
      init %w2zp = i8[] [0]
      init %ys = f32[] [0.05000000074505806]
      init %yzp = u8[] [10]
      init %b2_f32 = f32[2] [0.05999999865889549, -0.029999999329447746]
      %relu: f32[1,3,5,5] = kiln::QConv(%x, %s, %zp, %w, %ws) {activation="relu", pads=[1,1,1,1]}
      %rq: u8[1,3,5,5] = QuantizeLinear(%relu, %s2, %zp2)
      %ql_in: f32[1,3,5,5] = DequantizeLinear(%rq, %s2, %zp2)
      %ql_float: f32[1,2,5,5] = kiln::QConv(%ql_in, %s2, %zp2, %w2, %w2s, %w2zp, %b2_f32)
      %ql: u8[1,2,5,5] = QuantizeLinear(%ql_float, %ys, %yzp)
      %out: f32[1,2,5,5] = DequantizeLinear(%ql, %ys, %yzp)
      output %out: f32[1,2,5,5]
    }
    "#);
}

/// onnxruntime's dynamic quantization (quantize_dynamic): DynamicQuantizeLinear, MatMulInteger
/// with a u8 weight and zero point, Cast, Mul by the product of the two scales.
#[test]
fn matmul_integer_becomes_dynamic_qmatmul() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,4]");
    let dq = b.op_n(&["xq", "xs", "xzp"], "DynamicQuantizeLinear", &[x], vec![]);
    let n: usize = 12;
    let wv: Vec<u8> = values(n, 6).iter().map(|v| (v * 120.0 + 128.0) as u8).collect();
    let w = b.init("w", Tensor::from_vec(vec![4, 3], wv).expect("tensor"));
    let wzp = b.init("wzp", Tensor::scalar(128u8));
    let ws = b.scalar("ws", 0.01);
    let mi = b.op("mi", "MatMulInteger", &[dq[0], w, dq[2], wzp], vec![]);
    let cast = b.op("cast", "Cast", &[mi], vec![("to", int(1))]);
    let scale = b.op("scale", "Mul", &[dq[1], ws], vec![]);
    let y = b.op("y", "Mul", &[cast, scale], vec![]);
    b.output(y);
    let m = b.model();
    let (text, after) = before_after(&m, passes());
    same_outputs(&m, &after, &[("x", &[5, 4])], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,4]
      init %w = u8[4,3] <12 values>
      init %wzp = u8[] [128]
      init %ws = f32[] [0.009999999776482582]
      %xq: ?[?], %xs: ?[?], %xzp: ?[?] = DynamicQuantizeLinear(%x)
      %mi: ?[?] = MatMulInteger(%xq, %w, %xzp, %wzp)
      %cast: ?[?] = Cast(%mi) {to=1}
      %scale: ?[?] = Mul(%xs, %ws)
      %y: ?[?] = Mul(%cast, %scale)
      output %y: ?[?]
    }
    --- infer-shapes, fuse-qdq, fuse-activation, dce --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[N,4]
      init %w = u8[4,3] <12 values>
      init %wzp = u8[] [128]
      init %ws = f32[] [0.009999999776482582]
      %y: f32[N,3] = kiln::QMatMul(%x, _, _, %w, %ws, %wzp)
      output %y: f32[N,3]
    }
    "#);
}
