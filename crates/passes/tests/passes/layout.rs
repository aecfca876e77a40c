use crate::build::*;
use kiln_passes::{Dce, InferShapes, SimplifyLayout};

#[test]
fn transposes_compose_and_cancel() {
    let mut b = B::new();
    let x = b.input("x", "f32[2,3,4,5]");
    let t1 = b.op("t1", "Transpose", &[x], vec![("perm", ints(&[0, 2, 1, 3]))]);
    let t2 = b.op("t2", "Transpose", &[t1], vec![("perm", ints(&[0, 1, 3, 2]))]);
    let back = b.op("back", "Transpose", &[t1], vec![("perm", ints(&[0, 2, 1, 3]))]);
    let sum = b.op("sum", "Add", &[back, x], vec![]);
    b.output(t2);
    b.output(sum);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(SimplifyLayout), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 0.0);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3,4,5]
      %t1: ?[?] = Transpose(%x) {perm=[0,2,1,3]}
      %t2: ?[?] = Transpose(%t1) {perm=[0,1,3,2]}
      %back: ?[?] = Transpose(%t1) {perm=[0,2,1,3]}
      %sum: ?[?] = Add(%back, %x)
      output %t2: ?[?], %sum: ?[?]
    }
    --- simplify-layout, dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3,4,5]
      %t2: ?[?] = Transpose(%x) {perm=[0,2,3,1]}
      %sum: ?[?] = Add(%x, %x)
      output %t2: ?[?], %sum: ?[?]
    }
    "#);
}

#[test]
fn reshape_chains_collapse_and_squeeze_pairs_cancel() {
    let mut b = B::new();
    let x = b.input("x", "f32[2,3,4]");
    let s1 = b.i64s("s1", &[6, 4]);
    let r1 = b.op("r1", "Reshape", &[x, s1], vec![]);
    let s2 = b.i64s("s2", &[-1, 2]);
    let r2 = b.op("r2", "Reshape", &[r1, s2], vec![]);
    let ax = b.i64s("ax", &[1]);
    let un = b.op("un", "Unsqueeze", &[x, ax], vec![]);
    let sq = b.op("sq", "Squeeze", &[un, ax], vec![]);
    let y = b.op("y", "Relu", &[sq], vec![]);
    b.output(r2);
    b.output(y);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(SimplifyLayout), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 0.0);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3,4]
      init %s1 = i64[2] [6, 4]
      init %s2 = i64[2] [-1, 2]
      init %ax = i64[1] [1]
      %r1: ?[?] = Reshape(%x, %s1)
      %r2: ?[?] = Reshape(%r1, %s2)
      %un: ?[?] = Unsqueeze(%x, %ax)
      %sq: ?[?] = Squeeze(%un, %ax)
      %y: ?[?] = Relu(%sq)
      output %r2: ?[?], %y: ?[?]
    }
    --- infer-shapes, simplify-layout, dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3,4]
      init %s2 = i64[2] [-1, 2]
      %r2: f32[12,2] = Reshape(%x, %s2)
      %y: f32[2,3,4] = Relu(%x)
      output %r2: f32[12,2], %y: f32[2,3,4]
    }
    "#);
}
