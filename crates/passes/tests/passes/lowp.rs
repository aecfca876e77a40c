use crate::build::*;
use kiln_passes::{Dce, FuseActivation, FuseLowp, InferShapes};
use kiln_tensor::{DType, Data, Tensor};

fn passes() -> Vec<Box<dyn kiln_passes::Pass>> {
    vec![Box::new(InferShapes::default()), Box::new(FuseLowp), Box::new(FuseActivation), Box::new(Dce::default())]
}

fn cast_to(dt: DType) -> Vec<(&'static str, kiln_ir::Attr)> {
    vec![("to", int(i64::from(dt.to_onnx())))]
}

fn lowp(b: &mut B, name: &str, shape: &[usize], seed: u64, dt: DType) -> kiln_ir::ValueId {
    let n: usize = shape.iter().product();
    let t = Tensor::from_vec(shape.to_vec(), values(n, seed)).expect("tensor").cast(dt).expect("cast");
    b.init(name, t)
}

/// Each weight-only form becomes one kiln::WMatMul reading the stored weights: f16 (+ bias +
/// relu), bf16 with a bf16-rounded activation (compute "bf16"), uint4 in groups of 3 along K
/// with zero points, int8 per column. A DequantizeLinear blocked along N stays as it is.
#[test]
fn weight_only_matmuls_become_wmatmul() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,8]");
    let w16 = lowp(&mut b, "w16", &[8, 6], 1, DType::F16);
    let w16f = b.op("w16f", "Cast", &[w16], cast_to(DType::F32));
    let mm = b.op("mm", "MatMul", &[x, w16f], vec![]);
    let bias = b.rand("bias", &[6], 2);
    let add = b.op("add", "Add", &[mm, bias], vec![]);
    let relu = b.op("relu", "Relu", &[add], vec![]);
    // bf16 weights, the activation rounded to bf16 first.
    let r16 = b.op("r16", "Cast", &[relu], cast_to(DType::BF16));
    let rf = b.op("rf", "Cast", &[r16], cast_to(DType::F32));
    let wb = lowp(&mut b, "wb", &[6, 8], 3, DType::BF16);
    let wbf = b.op("wbf", "Cast", &[wb], cast_to(DType::F32));
    let mm2 = b.op("mm2", "MatMul", &[rf, wbf], vec![]);
    // uint4, groups of 3 along K = 8 (a partial last group), zero points.
    let w4 = b.init("w4", Tensor::new(vec![8, 4], Data::U4((0..32).map(|i| (i * 7 % 16) as u8).collect())).expect("u4"));
    let s4 = b.f32s("s4", &[3, 4], &(0..12).map(|i| 0.01 + 0.002 * i as f32).collect::<Vec<_>>());
    let z4 = b.init("z4", Tensor::new(vec![3, 4], Data::U4((0..12).map(|i| (i % 16) as u8).collect())).expect("u4"));
    let w4d = b.op("w4d", "DequantizeLinear", &[w4, s4, z4], vec![("axis", int(0)), ("block_size", int(3))]);
    let mm3 = b.op("mm3", "MatMul", &[mm2, w4d], vec![]);
    // int8, one scale per column.
    let w8 = b.init("w8", Tensor::from_vec(vec![4, 3], (0..12).map(|i| (i * 37 % 200 - 100) as i8).collect::<Vec<i8>>()).expect("i8"));
    let s8 = b.f32s("s8", &[3], &[0.01, 0.02, 0.03]);
    let w8d = b.op("w8d", "DequantizeLinear", &[w8, s8], vec![("axis", int(1))]);
    let mm4 = b.op("mm4", "MatMul", &[mm3, w8d], vec![]);
    // Blocked along N: not a layout WMatMul takes.
    let wn = b.init("wn", Tensor::from_vec(vec![3, 4], (0..12).map(|i| (i * 5 % 16 - 8) as i8).collect::<Vec<i8>>()).expect("i8"));
    let sn = b.f32s("sn", &[3, 2], &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    let wnd = b.op("wnd", "DequantizeLinear", &[wn, sn], vec![("axis", int(1)), ("block_size", int(2))]);
    let mm5 = b.op("mm5", "MatMul", &[mm4, wnd], vec![]);
    b.output(mm5);
    let m = b.model();
    let (text, after) = before_after(&m, passes());
    same_outputs(&m, &after, &[("x", &[5, 8])], 1e-6);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,8]
      init %w16 = f16[8,6] <48 values>
      init %bias = f32[6] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479, -0.9192653894424438, -0.45354902744293213]
      init %wb = bf16[6,8] <48 values>
      init %w4 = u4[8,4] <32 values>
      init %s4 = f32[3,4] <12 values>
      init %z4 = u4[3,4] <12 values>
      init %w8 = i8[4,3] <12 values>
      init %s8 = f32[3] [0.009999999776482582, 0.019999999552965164, 0.029999999329447746]
      init %wn = i8[3,4] <12 values>
      init %sn = f32[3,2] [0.10000000149011612, 0.20000000298023224, 0.30000001192092896, 0.4000000059604645, 0.5, 0.6000000238418579]
      %w16f: ?[?] = Cast(%w16) {to=1}
      %mm: ?[?] = MatMul(%x, %w16f)
      %add: ?[?] = Add(%mm, %bias)
      %relu: ?[?] = Relu(%add)
      %r16: ?[?] = Cast(%relu) {to=16}
      %rf: ?[?] = Cast(%r16) {to=1}
      %wbf: ?[?] = Cast(%wb) {to=1}
      %mm2: ?[?] = MatMul(%rf, %wbf)
      %w4d: ?[?] = DequantizeLinear(%w4, %s4, %z4) {axis=0, block_size=3}
      %mm3: ?[?] = MatMul(%mm2, %w4d)
      %w8d: ?[?] = DequantizeLinear(%w8, %s8) {axis=1}
      %mm4: ?[?] = MatMul(%mm3, %w8d)
      %wnd: ?[?] = DequantizeLinear(%wn, %sn) {axis=1, block_size=2}
      %mm5: ?[?] = MatMul(%mm4, %wnd)
      output %mm5: ?[?]
    }
    --- infer-shapes, fuse-lowp, fuse-activation, dce --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[N,8]
      init %w16 = f16[8,6] <48 values>
      init %wb = bf16[6,8] <48 values>
      init %w4 = u4[8,4] <32 values>
      init %s4 = f32[3,4] <12 values>
      init %z4 = u4[3,4] <12 values>
      init %w8 = i8[4,3] <12 values>
      init %s8 = f32[3] [0.009999999776482582, 0.019999999552965164, 0.029999999329447746]
      init %wn = i8[3,4] <12 values>
      init %sn = f32[3,2] [0.10000000149011612, 0.20000000298023224, 0.30000001192092896, 0.4000000059604645, 0.5, 0.6000000238418579]
      init %mm_bias = f32[6] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479, -0.9192653894424438, -0.45354902744293213]
      %relu: f32[N,6] = kiln::WMatMul(%x, %w16, _, _, %mm_bias) {activation="relu"}
      %mm2: f32[N,8] = kiln::WMatMul(%relu, %wb) {compute="bf16"}
      %mm3: f32[N,4] = kiln::WMatMul(%mm2, %w4, %s4, %z4) {block_size=3}
      %mm4: f32[N,3] = kiln::WMatMul(%mm3, %w8, %s8)
      %wnd: f32[3,4] = DequantizeLinear(%wn, %sn) {axis=1, block_size=2}
      %mm5: f32[N,4] = MatMul(%mm4, %wnd)
      output %mm5: f32[N,4]
    }
    "#);
}
