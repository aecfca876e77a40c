use crate::build::*;
use kiln_passes::{ChooseConvLayout, Dce, InferShapes};

#[test]
fn conv_regions_run_channels_last() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,3,8,8]");
    let w1 = b.rand("w1", &[4, 3, 3, 3], 1);
    let c1 = b.op("c1", "Conv", &[x, w1], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let r1 = b.op("r1", "Relu", &[c1], vec![]);
    let s = b.scalar("s", 0.5);
    let m = b.op("m", "Mul", &[r1, s], vec![]);
    let per_c = b.rand("per_c", &[1, 4, 1, 1], 2);
    let a = b.op("a", "Add", &[m, per_c], vec![]);
    let w2 = b.rand("w2", &[4, 1, 3, 3], 3);
    let c2 = b.op("c2", "Conv", &[a, w2], vec![("pads", ints(&[1, 1, 1, 1])), ("group", int(4))]);
    // A residual Add of two region values and a Concat on channels stay in the region.
    let res = b.op("res", "Add", &[c2, a], vec![]);
    let cat = b.op("cat", "Concat", &[res, r1], vec![("axis", int(1))]);
    // Read outside the region: back to NCHW once.
    let gap = b.op("gap", "GlobalAveragePool", &[cat], vec![]);
    // A lone convolution stays NCHW.
    let w3 = b.rand("w3", &[2, 8, 1, 1], 4);
    let lone = b.op("lone", "Conv", &[gap, w3], vec![]);
    b.output(lone);
    b.output(r1);
    let m0 = b.model();
    let (text, after) = before_after(&m0, vec![Box::new(InferShapes::default()), Box::new(ChooseConvLayout), Box::new(Dce::default())]);
    same_outputs(&m0, &after, &[], 1e-5);
    let after_text = text.split("--->").nth(1).expect("after part");
    insta::assert_snapshot!(after_text, @r#"

    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[1,3,8,8]
      init %w1 = f32[4,3,3,3] <108 values>
      init %s = f32[] [0.5]
      init %w2 = f32[4,1,3,3] <36 values>
      init %w3 = f32[2,8,1,1] <16 values>
      init %per_c_nhwc = f32[1,1,1,4] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479]
      %x_nhwc: f32[1,8,8,3] = Transpose(%x) {perm=[0,2,3,1]}  # x_to_nhwc
      %c1_nhwc: f32[1,8,8,4] = kiln::FusedConv(%x_nhwc, %w1) {layout="NHWC", pads=[1,1,1,1]}
      %r1_nhwc: f32[1,8,8,4] = Relu(%c1_nhwc)
      %r1: f32[1,4,8,8] = Transpose(%r1_nhwc) {perm=[0,3,1,2]}  # r1_to_nchw
      %m_nhwc: f32[1,8,8,4] = Mul(%r1_nhwc, %s)
      %a_nhwc: f32[1,8,8,4] = Add(%m_nhwc, %per_c_nhwc)
      %c2_nhwc: f32[1,8,8,4] = kiln::FusedConv(%a_nhwc, %w2) {group=4, layout="NHWC", pads=[1,1,1,1]}
      %res_nhwc: f32[1,8,8,4] = Add(%c2_nhwc, %a_nhwc)
      %cat_nhwc: f32[1,8,8,8] = Concat(%res_nhwc, %r1_nhwc) {axis=3}
      %cat: f32[1,8,8,8] = Transpose(%cat_nhwc) {perm=[0,3,1,2]}  # cat_to_nchw
      %gap: f32[1,8,1,1] = GlobalAveragePool(%cat)
      %lone: f32[1,2,1,1] = Conv(%gap, %w3)
      output %lone: f32[1,2,1,1], %r1: f32[1,4,8,8]
    }
    "#);
}
