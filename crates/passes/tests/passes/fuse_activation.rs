use crate::build::*;
use kiln_passes::{Dce, FuseActivation, FuseGelu, InferShapes, RemoveIdentities};

#[test]
fn conv_bias_and_activation_fuse() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,2,6,6]");
    let w = b.rand("w", &[3, 2, 3, 3], 1);
    let c = b.op("conv", "Conv", &[x, w], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let bias = b.f32s("bias", &[1, 3, 1, 1], &[0.1, -0.2, 0.3]);
    let add = b.op("add", "Add", &[c, bias], vec![]);
    let r = b.op("relu", "Relu", &[add], vec![]);
    // A second conv with relu6 as Clip, and a third with x * sigmoid(x).
    let w2 = b.rand("w2", &[3, 3, 1, 1], 2);
    let c2 = b.op("conv2", "Conv", &[r, w2], vec![]);
    let lo = b.scalar("lo", 0.0);
    let hi = b.scalar("hi", 6.0);
    let clip = b.op("relu6", "Clip", &[c2, lo, hi], vec![]);
    let c3 = b.op("conv3", "Conv", &[clip, w2], vec![]);
    let sig = b.op("sig", "Sigmoid", &[c3], vec![]);
    let silu = b.op("silu", "Mul", &[c3, sig], vec![]);
    b.output(silu);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseActivation), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-6);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,2,6,6]
      init %w = f32[3,2,3,3] <54 values>
      init %bias = f32[1,3,1,1] [0.10000000149011612, -0.20000000298023224, 0.30000001192092896]
      init %w2 = f32[3,3,1,1] <9 values>
      init %lo = f32[] [0]
      init %hi = f32[] [6]
      %conv: ?[?] = Conv(%x, %w) {pads=[1,1,1,1]}
      %add: ?[?] = Add(%conv, %bias)
      %relu: ?[?] = Relu(%add)
      %conv2: ?[?] = Conv(%relu, %w2)
      %relu6: ?[?] = Clip(%conv2, %lo, %hi)
      %conv3: ?[?] = Conv(%relu6, %w2)
      %sig: ?[?] = Sigmoid(%conv3)
      %silu: ?[?] = Mul(%conv3, %sig)
      output %silu: ?[?]
    }
    --- infer-shapes, fuse-activation, dce --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[1,2,6,6]
      init %w = f32[3,2,3,3] <54 values>
      init %w2 = f32[3,3,1,1] <9 values>
      init %conv_bias = f32[3] [0.10000000149011612, -0.20000000298023224, 0.30000001192092896]
      %relu: f32[1,3,6,6] = kiln::FusedConv(%x, %w, %conv_bias) {activation="relu", pads=[1,1,1,1]}
      %relu6: f32[1,3,6,6] = kiln::FusedConv(%relu, %w2) {activation="clip", activation_max=6.0, activation_min=0.0}
      %silu: f32[1,3,6,6] = kiln::FusedConv(%relu6, %w2) {activation="silu"}
      output %silu: f32[1,3,6,6]
    }
    "#);
}

#[test]
fn matmul_and_gemm_fuse() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,S,4]");
    let w = b.rand("w", &[4, 5], 1);
    let mm = b.op("mm", "MatMul", &[x, w], vec![]);
    let bias = b.rand("bias", &[5], 2);
    let add = b.op("add", "Add", &[bias, mm], vec![]);
    let sqrt2 = b.scalar("sqrt2", std::f32::consts::SQRT_2);
    let div = b.op("div", "Div", &[add, sqrt2], vec![]);
    let erf = b.op("erf", "Erf", &[div], vec![]);
    let one = b.scalar("one", 1.0);
    let onep = b.op("onep", "Add", &[erf, one], vec![]);
    let prod = b.op("prod", "Mul", &[add, onep], vec![]);
    let half = b.scalar("half", 0.5);
    let gelu = b.op("gelu", "Mul", &[prod, half], vec![]);
    // A plain MatMul stays; a Gemm always becomes FusedMatMul.
    let w2 = b.rand("w2", &[5, 3], 3);
    let plain = b.op("plain", "MatMul", &[gelu, w2], vec![]);
    let a = b.input("a", "f32[2,4]");
    let gw = b.rand("gw", &[3, 4], 4);
    let gc = b.rand("gc", &[3], 5);
    let gemm = b.op("gemm", "Gemm", &[a, gw, gc], vec![("transB", int(1))]);
    let leaky = b.op("leaky", "LeakyRelu", &[gemm], vec![("alpha", float(0.1))]);
    b.output(plain);
    b.output(leaky);
    let m = b.model();
    let passes: Vec<Box<dyn kiln_passes::Pass>> =
        vec![Box::new(InferShapes::default()), Box::new(FuseGelu), Box::new(FuseActivation), Box::new(Dce::default())];
    let (text, after) = before_after(&m, passes);
    same_outputs(&m, &after, &[("x", &[2, 3, 4])], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,S,4]
      input %a: f32[2,4]
      init %w = f32[4,5] <20 values>
      init %bias = f32[5] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479, -0.9192653894424438]
      init %sqrt2 = f32[] [1.4142135381698608]
      init %one = f32[] [1]
      init %half = f32[] [0.5]
      init %w2 = f32[5,3] <15 values>
      init %gw = f32[3,4] <12 values>
      init %gc = f32[3] [0.8009246587753296, 0.4091320037841797, 0.8347967863082886]
      %mm: ?[?] = MatMul(%x, %w)
      %add: ?[?] = Add(%bias, %mm)
      %div: ?[?] = Div(%add, %sqrt2)
      %erf: ?[?] = Erf(%div)
      %onep: ?[?] = Add(%erf, %one)
      %prod: ?[?] = Mul(%add, %onep)
      %gelu: ?[?] = Mul(%prod, %half)
      %plain: ?[?] = MatMul(%gelu, %w2)
      %gemm: ?[?] = Gemm(%a, %gw, %gc) {transB=1}
      %leaky: ?[?] = LeakyRelu(%gemm) {alpha=0.1}
      output %plain: ?[?], %leaky: ?[?]
    }
    --- infer-shapes, fuse-gelu, fuse-activation, dce --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[N,S,4]
      input %a: f32[2,4]
      init %w = f32[4,5] <20 values>
      init %bias = f32[5] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479, -0.9192653894424438]
      init %w2 = f32[5,3] <15 values>
      init %gw = f32[3,4] <12 values>
      init %gc = f32[3] [0.8009246587753296, 0.4091320037841797, 0.8347967863082886]
      %gelu: f32[N,S,5] = kiln::FusedMatMul(%x, %w, %bias) {activation="gelu", activation_approximate="none"}
      %leaky: f32[2,3] = kiln::FusedMatMul(%a, %gw, %gc) {activation="leaky_relu", activation_alpha=0.1, alpha=1.0, beta=1.0, transA=0, transB=1}
      %plain: f32[N,S,3] = MatMul(%gelu, %w2)
      output %plain: f32[N,S,3], %leaky: f32[2,3]
    }
    "#);
}

#[test]
fn a_bias_on_the_wrong_axis_stays_an_add() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,2,4,4]");
    let w = b.rand("w", &[3, 2, 1, 1], 1);
    let c = b.op("conv", "Conv", &[x, w], vec![]);
    let bias = b.rand("bias", &[4], 2);
    let add = b.op("add", "Add", &[c, bias], vec![]);
    b.output(add);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(RemoveIdentities), Box::new(FuseActivation)]);
    same_outputs(&m, &after, &[], 1e-6);
    assert!(text.contains("= Add(%conv, %bias)"), "{text}");
    assert!(text.contains("kiln::FusedConv"), "{text}");
}
