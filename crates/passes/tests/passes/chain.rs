use crate::build::*;
use kiln_passes::{Dce, FuseElementwise, InferShapes};

#[test]
fn elementwise_runs_become_chains() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,4,3,3]");
    // A learnable affine after an activation: HardSwish, * s, + b.
    let hs = b.op("hs", "HardSwish", &[x], vec![]);
    let s = b.scalar("s", 0.75);
    let scaled = b.op("scaled", "Mul", &[hs, s], vec![]);
    let c = b.rand("c", &[1, 4, 1, 1], 1);
    let shifted = b.op("shifted", "Add", &[scaled, c], vec![]);
    // The running value on the right of a Sub, then a Clip with constant bounds.
    let one = b.scalar("one", 1.0);
    let flipped = b.op("flipped", "Sub", &[one, shifted], vec![]);
    let lo = b.scalar("lo", -0.5);
    let hi = b.scalar("hi", 0.5);
    let clipped = b.op("clipped", "Clip", &[flipped, lo, hi], vec![]);
    // Two readers: the chain stops before them.
    let r1 = b.op("r1", "Relu", &[clipped], vec![]);
    let r2 = b.op("r2", "Sigmoid", &[clipped], vec![]);
    // A widening Add ends a chain: [1,4,3,3] + [2,1,1,1] -> [2,4,3,3].
    let wide = b.rand("wide", &[2, 1, 1, 1], 2);
    let w = b.op("w", "Add", &[r1, wide], vec![]);
    let wt = b.op("wt", "Tanh", &[w], vec![]);
    // x * x is not a chain link.
    let sq = b.op("sq", "Mul", &[r2, r2], vec![]);
    let sqn = b.op("sqn", "Neg", &[sq], vec![]);
    b.output(wt);
    b.output(sqn);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseElementwise), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-6);
    let after_text = text.split("--->").nth(1).expect("after part");
    insta::assert_snapshot!(after_text, @r#"
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[1,4,3,3]
      init %s = f32[] [0.75]
      init %c = f32[1,4,1,1] [0.04092049598693848, -0.8525375127792358, 0.49050819873809814, 0.4352734088897705]
      init %one = f32[] [1]
      init %wide = f32[2,1,1,1] [0.7309215068817139, -0.03712010383605957]
      %clipped: f32[1,4,3,3] = kiln::Chain(%x, %s, %c, %one) {alpha=[0.0, 0.0, 0.0, 0.0, -0.5], beta=[0.0, 0.0, 0.0, 0.0, 0.5], operands=[-1,1,2,3,-1], ops=["HardSwish", "Mul", "Add", "Sub", "Clip"], swap=[0,0,0,1,0]}
      %r1: f32[1,4,3,3] = Relu(%clipped)
      %r2: f32[1,4,3,3] = Sigmoid(%clipped)
      %w: f32[2,4,3,3] = Add(%r1, %wide)
      %wt: f32[2,4,3,3] = Tanh(%w)
      %sq: f32[1,4,3,3] = Mul(%r2, %r2)
      %sqn: f32[1,4,3,3] = Neg(%sq)
      output %wt: f32[2,4,3,3], %sqn: f32[1,4,3,3]
    }
    "#);
}
