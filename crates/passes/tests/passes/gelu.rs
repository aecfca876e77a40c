use crate::build::*;
use kiln_ir::ValueId;
use kiln_passes::{Dce, FuseGelu};

/// 0.5 * x * (1 + erf(x / sqrt 2)) in the association `order` picks.
fn erf_gelu(b: &mut B, x: ValueId, order: usize) -> ValueId {
    let c = b.scalar("c", std::f32::consts::FRAC_1_SQRT_2);
    let z = b.op("z", "Mul", &[x, c], vec![]);
    let e = b.op("e", "Erf", &[z], vec![]);
    let one = b.scalar("one", 1.0);
    let a = b.op("a", "Add", &[one, e], vec![]);
    let half = b.scalar("half", 0.5);
    match order {
        0 => {
            let hx = b.op("hx", "Mul", &[half, x], vec![]);
            b.op("y", "Mul", &[hx, a], vec![])
        }
        1 => {
            let xa = b.op("xa", "Mul", &[x, a], vec![]);
            let two = b.scalar("two", 2.0);
            b.op("y", "Div", &[xa, two], vec![])
        }
        _ => {
            let ha = b.op("ha", "Mul", &[a, half], vec![]);
            b.op("y", "Mul", &[x, ha], vec![])
        }
    }
}

#[test]
fn erf_forms_fuse() {
    for order in 0..3 {
        let mut b = B::new();
        let x = b.input("x", "f32[2,3]");
        let y = erf_gelu(&mut b, x, order);
        b.output(y);
        let m = b.model();
        let (text, after) = before_after(&m, vec![Box::new(FuseGelu), Box::new(Dce::default())]);
        same_outputs(&m, &after, &[], 1e-6);
        let after_text = &text[text.find("--->").expect("arrow")..];
        assert!(after_text.contains("= Gelu(%x) {approximate=\"none\"}"), "order {order}:\n{text}");
        assert!(!after_text.contains("Erf"), "order {order}:\n{text}");
    }
    let mut b = B::new();
    let x = b.input("x", "f32[2,3]");
    let y = erf_gelu(&mut b, x, 0);
    b.output(y);
    insta::assert_snapshot!(run(&b.model(), FuseGelu), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3]
      init %c = f32[] [0.7071067690849304]
      init %one = f32[] [1]
      init %half = f32[] [0.5]
      %z: ?[?] = Mul(%x, %c)
      %e: ?[?] = Erf(%z)
      %a: ?[?] = Add(%one, %e)
      %hx: ?[?] = Mul(%half, %x)
      %y: ?[?] = Mul(%hx, %a)
      output %y: ?[?]
    }
    --- fuse-gelu --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3]
      init %c = f32[] [0.7071067690849304]
      init %one = f32[] [1]
      init %half = f32[] [0.5]
      %y: ?[?] = Gelu(%x) {approximate="none"}
      output %y: ?[?]
    }
    "#);
}

#[test]
fn tanh_form_fuses() {
    let mut b = B::new();
    let x = b.input("x", "f32[2,3]");
    let three = b.scalar("three", 3.0);
    let cube = b.op("cube", "Pow", &[x, three], vec![]);
    let k = b.scalar("k", 0.044715);
    let kc = b.op("kc", "Mul", &[k, cube], vec![]);
    let inner = b.op("inner", "Add", &[x, kc], vec![]);
    let s = b.scalar("s", 0.797_884_6);
    let scaled = b.op("scaled", "Mul", &[inner, s], vec![]);
    let t = b.op("t", "Tanh", &[scaled], vec![]);
    let one = b.scalar("one", 1.0);
    let a = b.op("a", "Add", &[t, one], vec![]);
    let xa = b.op("xa", "Mul", &[x, a], vec![]);
    let half = b.scalar("half", 0.5);
    let y = b.op("y", "Mul", &[xa, half], vec![]);
    b.output(y);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(FuseGelu), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-6);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3]
      init %three = f32[] [3]
      init %k = f32[] [0.044714998453855515]
      init %s = f32[] [0.7978845834732056]
      init %one = f32[] [1]
      init %half = f32[] [0.5]
      %cube: ?[?] = Pow(%x, %three)
      %kc: ?[?] = Mul(%k, %cube)
      %inner: ?[?] = Add(%x, %kc)
      %scaled: ?[?] = Mul(%inner, %s)
      %t: ?[?] = Tanh(%scaled)
      %a: ?[?] = Add(%t, %one)
      %xa: ?[?] = Mul(%x, %a)
      %y: ?[?] = Mul(%xa, %half)
      output %y: ?[?]
    }
    --- fuse-gelu, dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[2,3]
      %y: ?[?] = Gelu(%x) {approximate="tanh"}
      output %y: ?[?]
    }
    "#);
}

#[test]
fn a_shared_intermediate_blocks_the_fusion() {
    let mut b = B::new();
    let x = b.input("x", "f32[2,3]");
    let y = erf_gelu(&mut b, x, 0);
    b.output(y);
    let mut m = b.model();
    // The Erf output is also a graph output: it must survive, so nothing fuses.
    let e = m.graph.value_by_name("e").expect("e");
    m.graph.outputs.push(e);
    let (text, _) = before_after(&m, vec![Box::new(FuseGelu)]);
    assert!(!text.contains("Gelu("), "{text}");
}
