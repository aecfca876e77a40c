use crate::build::*;
use kiln_passes::{Dce, FuseHardSwish};

#[test]
fn clip_and_hard_sigmoid_forms_fuse() {
    let mut b = B::new().opset(12);
    let x = b.input("x", "f32[2,8]");
    // paddle2onnx: Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)
    let three = b.f32s("three", &[1], &[3.0]);
    let shifted = b.op("shifted", "Add", &[x, three], vec![]);
    let lo = b.scalar("lo", 0.0);
    let hi = b.scalar("hi", 6.0);
    let clip = b.op("clip", "Clip", &[shifted, lo, hi], vec![]);
    let prod = b.op("prod", "Mul", &[x, clip], vec![]);
    let six = b.f32s("six", &[1], &[6.0]);
    let hs1 = b.op("hs1", "Div", &[prod, six], vec![]);
    // Mul(Mul(Clip(Add(y, 3), 0, 6), 1/6), y)
    let shifted2 = b.op("shifted2", "Add", &[three, hs1], vec![]);
    let clip2 = b.op("clip2", "Clip", &[shifted2, lo, hi], vec![]);
    let inv6 = b.scalar("inv6", 1.0 / 6.0);
    let gate = b.op("gate", "Mul", &[clip2, inv6], vec![]);
    let hs2 = b.op("hs2", "Mul", &[gate, hs1], vec![]);
    // x * HardSigmoid(x, 1/6, 0.5)
    let sig = b.op("sig", "HardSigmoid", &[hs2], vec![("alpha", float(1.0 / 6.0)), ("beta", float(0.5))]);
    let hs3 = b.op("hs3", "Mul", &[hs2, sig], vec![]);
    b.output(hs3);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(FuseHardSwish), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-6);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=12]
    graph "g" {
      input %x: f32[2,8]
      init %three = f32[1] [3]
      init %lo = f32[] [0]
      init %hi = f32[] [6]
      init %six = f32[1] [6]
      init %inv6 = f32[] [0.1666666716337204]
      %shifted: ?[?] = Add(%x, %three)
      %clip: ?[?] = Clip(%shifted, %lo, %hi)
      %prod: ?[?] = Mul(%x, %clip)
      %hs1: ?[?] = Div(%prod, %six)
      %shifted2: ?[?] = Add(%three, %hs1)
      %clip2: ?[?] = Clip(%shifted2, %lo, %hi)
      %gate: ?[?] = Mul(%clip2, %inv6)
      %hs2: ?[?] = Mul(%gate, %hs1)
      %sig: ?[?] = HardSigmoid(%hs2) {alpha=0.16666667, beta=0.5}
      %hs3: ?[?] = Mul(%hs2, %sig)
      output %hs3: ?[?]
    }
    --- fuse-hardswish, dce --->
    model ir_version=8 opsets=[ai.onnx=12]
    graph "g" {
      input %x: f32[2,8]
      %hs1: ?[?] = HardSwish(%x)
      %hs2: ?[?] = HardSwish(%hs1)
      %hs3: ?[?] = HardSwish(%hs2)
      output %hs3: ?[?]
    }
    "#);
}

#[test]
fn other_bounds_are_not_hardswish() {
    let mut b = B::new();
    let x = b.input("x", "f32[4]");
    let three = b.scalar("three", 3.0);
    let shifted = b.op("shifted", "Add", &[x, three], vec![]);
    let lo = b.scalar("lo", 0.0);
    let hi = b.scalar("hi", 5.0);
    let clip = b.op("clip", "Clip", &[shifted, lo, hi], vec![]);
    let prod = b.op("prod", "Mul", &[x, clip], vec![]);
    let six = b.scalar("six", 6.0);
    let y = b.op("y", "Div", &[prod, six], vec![]);
    b.output(y);
    let (text, _) = before_after(&b.model(), vec![Box::new(FuseHardSwish)]);
    assert!(!text.contains("HardSwish("), "{text}");
}
