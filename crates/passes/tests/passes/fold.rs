use crate::build::*;
use kiln_passes::{FoldConstants, InferShapes};
use kiln_tensor::Tensor;

#[test]
fn constant_subgraphs_become_initializers() {
    let mut b = B::new();
    let x = b.input("x", "f32[2,3]");
    let a = b.f32s("a", &[3], &[1.0, 2.0, 3.0]);
    let c = b.node(
        &["c"],
        "",
        "Constant",
        vec![],
        vec![("value", kiln_ir::Attr::Tensor(Tensor::from_vec(vec![3], vec![10.0f32, 20.0, 30.0]).expect("t")))],
    )[0];
    let sum = b.op("sum", "Add", &[a, c], vec![]);
    let y = b.op("y", "Mul", &[x, sum], vec![]);
    b.output(y);
    insta::assert_snapshot!(run(&b.model(), FoldConstants), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3]
      init %a = f32[3] [1, 2, 3]
      %c: ?[?] = Constant() {value=f32[3] [10, 20, 30]}
      %sum: ?[?] = Add(%a, %c)
      %y: ?[?] = Mul(%x, %sum)
      output %y: ?[?]
    }
    --- fold-constants --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3]
      init %a = f32[3] [1, 2, 3]
      init %c = f32[3] [10, 20, 30]
      init %sum = f32[3] [11, 22, 33]
      %y: ?[?] = Mul(%x, %sum)
      output %y: ?[?]
    }
    "#);
}

#[test]
fn shapes_fold_when_known_and_stay_when_symbolic() {
    let mut b = B::new();
    let x = b.input("x", "f32[2,3,4]");
    let s = b.input("s", "f32[N,3]");
    let sh = b.op("shape", "Shape", &[x], vec![]);
    let idx = b.i64s("idx", &[2]);
    let last = b.op("last", "Gather", &[sh, idx], vec![]);
    let minus = b.i64s("minus", &[-1]);
    let target = b.op("target", "Concat", &[minus, last], vec![("axis", int(0))]);
    let r = b.op("r", "Reshape", &[x, target], vec![]);
    let sym = b.op("sym", "Shape", &[s], vec![]);
    b.output(r);
    b.output(sym);
    let (text, _) = before_after(&b.model(), vec![Box::new(InferShapes::default()), Box::new(FoldConstants)]);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3,4]
      input %s: f32[N,3]
      init %idx = i64[1] [2]
      init %minus = i64[1] [-1]
      %shape: ?[?] = Shape(%x)
      %last: ?[?] = Gather(%shape, %idx)
      %target: ?[?] = Concat(%minus, %last) {axis=0}
      %r: ?[?] = Reshape(%x, %target)
      %sym: ?[?] = Shape(%s)
      output %r: ?[?], %sym: ?[?]
    }
    --- infer-shapes, fold-constants --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3,4]
      input %s: f32[N,3]
      init %shape = i64[3] [2, 3, 4]
      init %idx = i64[1] [2]
      init %last = i64[1] [4]
      init %minus = i64[1] [-1]
      init %target = i64[2] [-1, 4]
      %r: f32[6,4] = Reshape(%x, %target)
      %sym: i64[2] = Shape(%s)
      output %r: f32[6,4], %sym: i64[2]
    }
    "#);
}

#[test]
fn outputs_over_the_limit_are_not_folded() {
    let mut b = B::new();
    let shape = b.i64s("shape", &[4096, 4097]);
    let big = b.node(
        &["big"],
        "",
        "ConstantOfShape",
        vec![Some(shape)],
        vec![("value", kiln_ir::Attr::Tensor(Tensor::from_vec(vec![1], vec![1.0f32]).expect("t")))],
    )[0];
    let small_shape = b.i64s("small_shape", &[2]);
    let small = b.node(
        &["small"],
        "",
        "ConstantOfShape",
        vec![Some(small_shape)],
        vec![("value", kiln_ir::Attr::Tensor(Tensor::from_vec(vec![1], vec![1.0f32]).expect("t")))],
    )[0];
    b.output(big);
    b.output(small);
    let (text, _) = before_after(&b.model(), vec![Box::new(InferShapes::default()), Box::new(FoldConstants)]);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      init %shape = i64[2] [4096, 4097]
      init %small_shape = i64[1] [2]
      %big: ?[?] = ConstantOfShape(%shape) {value=f32[1] [1]}
      %small: ?[?] = ConstantOfShape(%small_shape) {value=f32[1] [1]}
      output %big: ?[?], %small: ?[?]
    }
    --- infer-shapes, fold-constants --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      init %shape = i64[2] [4096, 4097]
      init %small_shape = i64[1] [2]
      init %small = f32[2] [1, 1]
      %big: f32[4096,4097] = ConstantOfShape(%shape) {value=f32[1] [1]}
      output %big: f32[4096,4097], %small: f32[2]
    }
    "#);
}

#[test]
fn a_failing_kernel_names_the_node() {
    let mut b = B::new();
    let a = b.f32s("a", &[2], &[1.0, 2.0]);
    let c = b.f32s("c", &[3], &[1.0, 2.0, 3.0]);
    let bad = b.op("bad", "Add", &[a, c], vec![]);
    b.output(bad);
    let mut m = b.model();
    m.graph.nodes[0].name = "broken_add".into();
    let err = kiln_passes::optimize(&mut m, &[Box::new(FoldConstants)]).err().map(|e| e.to_string());
    insta::assert_snapshot!(err.unwrap_or_default(), @"pass fold-constants: node 'broken_add' (Add): shapes [[2], [3]] cannot be broadcast together");
}
