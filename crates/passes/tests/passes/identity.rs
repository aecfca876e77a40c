use crate::build::*;
use kiln_passes::{InferShapes, RemoveIdentities};

#[test]
fn identities_are_bypassed() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,4]");
    let a = b.op("a", "Identity", &[x], vec![]);
    let d = b.op_n(&["d", "mask"], "Dropout", &[a], vec![]);
    let c = b.op("c", "Cast", &[d[0]], vec![("to", int(1))]);
    let shape = b.i64s("shape", &[0, 4]);
    let r = b.op("r", "Reshape", &[c, shape], vec![]);
    let t = b.op("t", "Transpose", &[r], vec![("perm", ints(&[0, 1]))]);
    let zero = b.f32s("zero", &[4], &[0.0; 4]);
    let s = b.op("s", "Add", &[t, zero], vec![]);
    let one = b.f32s("one", &[1], &[1.0]);
    let m = b.op("m", "Mul", &[one, s], vec![]);
    let e = b.op("e", "Exp", &[m], vec![]);
    b.output(e);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(RemoveIdentities)]);
    same_outputs(&m, &after, &[("x", &[2, 4])], 0.0);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,4]
      init %shape = i64[2] [0, 4]
      init %zero = f32[4] [0, 0, 0, 0]
      init %one = f32[1] [1]
      %a: ?[?] = Identity(%x)
      %d: ?[?], %mask: ?[?] = Dropout(%a)
      %c: ?[?] = Cast(%d) {to=1}
      %r: ?[?] = Reshape(%c, %shape)
      %t: ?[?] = Transpose(%r) {perm=[0,1]}
      %s: ?[?] = Add(%t, %zero)
      %m: ?[?] = Mul(%one, %s)
      %e: ?[?] = Exp(%m)
      output %e: ?[?]
    }
    --- infer-shapes, remove-identities --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,4]
      init %shape = i64[2] [0, 4]
      init %zero = f32[4] [0, 0, 0, 0]
      init %one = f32[1] [1]
      %e: f32[N,4] = Exp(%x)
      output %e: f32[N,4]
    }
    "#);
}

#[test]
fn shape_changing_neutral_ops_and_interface_identities_stay() {
    let mut b = B::new();
    let x = b.input("x", "f32[4]");
    let zero = b.f32s("zero", &[2, 1], &[0.0, 0.0]);
    let grown = b.op("grown", "Add", &[x, zero], vec![]);
    let passthrough = b.op("passthrough", "Identity", &[x], vec![]);
    let to_i = b.op("to_i", "Cast", &[x], vec![("to", int(7))]);
    b.output(grown);
    b.output(passthrough);
    b.output(to_i);
    let (text, _) = before_after(&b.model(), vec![Box::new(InferShapes::default()), Box::new(RemoveIdentities)]);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[4]
      init %zero = f32[2,1] [0, 0]
      %grown: ?[?] = Add(%x, %zero)
      %passthrough: ?[?] = Identity(%x)
      %to_i: ?[?] = Cast(%x) {to=7}
      output %grown: ?[?], %passthrough: ?[?], %to_i: ?[?]
    }
    --- infer-shapes, remove-identities --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[4]
      init %zero = f32[2,1] [0, 0]
      %grown: f32[2,4] = Add(%x, %zero)
      %passthrough: f32[4] = Identity(%x)
      %to_i: i64[4] = Cast(%x) {to=7}
      output %grown: f32[2,4], %passthrough: f32[4], %to_i: i64[4]
    }
    "#);
}
