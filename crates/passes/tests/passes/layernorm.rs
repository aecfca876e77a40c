use crate::build::*;
use kiln_passes::{Dce, FuseLayerNorm, InferShapes};

/// x -> the decomposed LayerNorm over the last axis; `recip` uses Reciprocal + Mul instead of
/// Div and Mul(d, d) instead of Pow.
fn decomposed(recip: bool, with_affine: bool) -> kiln_ir::Model {
    let mut b = B::new().opset(13);
    let x = b.input("x", "f32[N,3,4]");
    let mean = b.op("mean", "ReduceMean", &[x], vec![("axes", ints(&[-1]))]);
    let d = b.op("d", "Sub", &[x, mean], vec![]);
    let sq = if recip {
        b.op("sq", "Mul", &[d, d], vec![])
    } else {
        let two = b.scalar("two", 2.0);
        b.op("sq", "Pow", &[d, two], vec![])
    };
    let var = b.op("var", "ReduceMean", &[sq], vec![("axes", ints(&[2]))]);
    let eps = b.scalar("eps", 1e-5);
    let ve = b.op("ve", "Add", &[var, eps], vec![]);
    let std = b.op("std", "Sqrt", &[ve], vec![]);
    let n = if recip {
        let r = b.op("inv", "Reciprocal", &[std], vec![]);
        b.op("n", "Mul", &[r, d], vec![])
    } else {
        b.op("n", "Div", &[d, std], vec![])
    };
    let y = if with_affine {
        let gamma = b.f32s("gamma", &[4], &[1.0, 2.0, 0.5, -1.0]);
        let beta = b.f32s("beta", &[4], &[0.0, 0.1, 0.2, 0.3]);
        let s = b.op("scaled", "Mul", &[n, gamma], vec![]);
        b.op("y", "Add", &[s, beta], vec![])
    } else {
        n
    };
    b.output(y);
    b.model()
}

#[test]
fn layernorm_pattern_fuses() {
    let m = decomposed(false, true);
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseLayerNorm), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[("x", &[2, 3, 4])], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=13]
    graph "g" {
      input %x: f32[N,3,4]
      init %two = f32[] [2]
      init %eps = f32[] [0.000009999999747378752]
      init %gamma = f32[4] [1, 2, 0.5, -1]
      init %beta = f32[4] [0, 0.10000000149011612, 0.20000000298023224, 0.30000001192092896]
      %mean: ?[?] = ReduceMean(%x) {axes=[-1]}
      %d: ?[?] = Sub(%x, %mean)
      %sq: ?[?] = Pow(%d, %two)
      %var: ?[?] = ReduceMean(%sq) {axes=[2]}
      %ve: ?[?] = Add(%var, %eps)
      %std: ?[?] = Sqrt(%ve)
      %n: ?[?] = Div(%d, %std)
      %scaled: ?[?] = Mul(%n, %gamma)
      %y: ?[?] = Add(%scaled, %beta)
      output %y: ?[?]
    }
    --- infer-shapes, fuse-layernorm, dce --->
    model ir_version=8 opsets=[ai.onnx=13]
    graph "g" {
      input %x: f32[N,3,4]
      init %y_gamma = f32[4] [1, 2, 0.5, -1]
      init %y_beta = f32[4] [0, 0.10000000149011612, 0.20000000298023224, 0.30000001192092896]
      %y: f32[N,3,4] = LayerNormalization(%x, %y_gamma, %y_beta) {axis=-1, epsilon=1e-5}
      output %y: f32[N,3,4]
    }
    "#);
}

#[test]
fn reciprocal_variant_without_affine_fuses() {
    let m = decomposed(true, false);
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseLayerNorm), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[("x", &[2, 3, 4])], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=13]
    graph "g" {
      input %x: f32[N,3,4]
      init %eps = f32[] [0.000009999999747378752]
      %mean: ?[?] = ReduceMean(%x) {axes=[-1]}
      %d: ?[?] = Sub(%x, %mean)
      %sq: ?[?] = Mul(%d, %d)
      %var: ?[?] = ReduceMean(%sq) {axes=[2]}
      %ve: ?[?] = Add(%var, %eps)
      %std: ?[?] = Sqrt(%ve)
      %inv: ?[?] = Reciprocal(%std)
      %n: ?[?] = Mul(%inv, %d)
      output %n: ?[?]
    }
    --- infer-shapes, fuse-layernorm, dce --->
    model ir_version=8 opsets=[ai.onnx=13]
    graph "g" {
      input %x: f32[N,3,4]
      init %n_gamma = f32[4] [1, 1, 1, 1]
      %n: f32[N,3,4] = LayerNormalization(%x, %n_gamma) {axis=-1, epsilon=1e-5}
      output %n: f32[N,3,4]
    }
    "#);
}
