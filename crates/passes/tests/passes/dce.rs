use crate::build::*;
use kiln_passes::Dce;

#[test]
fn dead_nodes_and_unused_initializers_go() {
    let mut b = B::new();
    let x = b.input("x", "f32[4]");
    let unused_input = b.input("unused_input", "f32[4]");
    let w = b.f32s("w", &[4], &[1.0, 2.0, 3.0, 4.0]);
    let spare = b.f32s("spare", &[1], &[7.0]);
    let y = b.op("y", "Mul", &[x, w], vec![]);
    let dead = b.op("dead", "Exp", &[x], vec![]);
    let _dead2 = b.op("dead2", "Add", &[dead, spare], vec![]);
    let _ = unused_input;
    b.output(y);
    insta::assert_snapshot!(run(&b.model(), Dce::default()), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[4]
      input %unused_input: f32[4]
      init %w = f32[4] [1, 2, 3, 4]
      init %spare = f32[1] [7]
      %y: ?[?] = Mul(%x, %w)
      %dead: ?[?] = Exp(%x)
      %dead2: ?[?] = Add(%dead, %spare)
      output %y: ?[?]
    }
    --- dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[4]
      input %unused_input: f32[4]
      init %w = f32[4] [1, 2, 3, 4]
      %y: ?[?] = Mul(%x, %w)
      output %y: ?[?]
    }
    "#);
}
