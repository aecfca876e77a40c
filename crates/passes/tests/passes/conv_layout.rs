use crate::build::*;
use kiln_passes::{ChooseConvLayout, Dce, InferShapes};

fn layout_pass(m: &kiln_ir::Model) -> (String, kiln_ir::Model) {
    let (text, after) = before_after(m, vec![Box::new(InferShapes::default()), Box::new(ChooseConvLayout), Box::new(Dce::default())]);
    same_outputs(m, &after, &[], 1e-5);
    (text.split("--->").nth(1).expect("after part").to_string(), after)
}

/// x -> conv -> relu -> * s -> + per-channel -> depthwise conv -> residual add -> conv ->
/// conv -> concat -> global pool -> 1x1 conv: one region.
fn backbone(b: &mut B, x: kiln_ir::ValueId) -> (kiln_ir::ValueId, kiln_ir::ValueId) {
    let w1 = b.rand("w1", &[4, 3, 3, 3], 1);
    let c1 = b.op("c1", "Conv", &[x, w1], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let r1 = b.op("r1", "Relu", &[c1], vec![]);
    let s = b.scalar("s", 0.5);
    let m = b.op("m", "Mul", &[r1, s], vec![]);
    let per_c = b.rand("per_c", &[1, 4, 1, 1], 2);
    let a = b.op("a", "Add", &[m, per_c], vec![]);
    let w2 = b.rand("w2", &[4, 1, 3, 3], 3);
    let c2 = b.op("c2", "Conv", &[a, w2], vec![("pads", ints(&[1, 1, 1, 1])), ("group", int(4))]);
    let res = b.op("res", "Add", &[c2, a], vec![]);
    let w3 = b.rand("w3", &[4, 4, 1, 1], 4);
    let c3 = b.op("c3", "Conv", &[res, w3], vec![]);
    let w3b = b.rand("w3b", &[4, 4, 1, 1], 7);
    let c3b = b.op("c3b", "Conv", &[c3, w3b], vec![]);
    let cat = b.op("cat", "Concat", &[c3b, r1], vec![("axis", int(1))]);
    let gap = b.op("gap", "GlobalAveragePool", &[cat], vec![]);
    let w4 = b.rand("w4", &[2, 8, 1, 1], 5);
    (b.op("fc", "Conv", &[gap, w4], vec![]), r1)
}

#[test]
fn conv_regions_run_channels_last() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,3,8,8]");
    let (fc, _) = backbone(&mut b, x);
    b.output(fc);
    // A lone convolution stays NCHW.
    let y = b.input("y", "f32[1,2,5,5]");
    let w = b.rand("w", &[3, 2, 3, 3], 6);
    let lone = b.op("lone", "Conv", &[y, w], vec![]);
    b.output(lone);
    let (after, _) = layout_pass(&b.model());
    insta::assert_snapshot!(after, @r#"

    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[1,3,8,8]
      input %y: f32[1,2,5,5]
      init %w1 = f32[4,3,3,3] <108 values>
      init %s = f32[] [0.5]
      init %w2 = f32[4,1,3,3] <36 values>
      init %w3 = f32[4,4,1,1] <16 values>
      init %w3b = f32[4,4,1,1] <16 values>
      init %w4 = f32[2,8,1,1] <16 values>
      init %w = f32[3,2,3,3] <54 values>
      init %per_c_nhwc = f32[1,1,1,4] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479]
      %x_nhwc: f32[1,8,8,3] = Transpose(%x) {perm=[0,2,3,1]}  # x_to_nhwc
      %c1_nhwc: f32[1,8,8,4] = kiln::FusedConv(%x_nhwc, %w1) {layout="NHWC", pads=[1,1,1,1]}
      %r1_nhwc: f32[1,8,8,4] = Relu(%c1_nhwc)
      %m_nhwc: f32[1,8,8,4] = Mul(%r1_nhwc, %s)
      %a_nhwc: f32[1,8,8,4] = Add(%m_nhwc, %per_c_nhwc)
      %c2_nhwc: f32[1,8,8,4] = kiln::FusedConv(%a_nhwc, %w2) {group=4, layout="NHWC", pads=[1,1,1,1]}
      %res_nhwc: f32[1,8,8,4] = Add(%c2_nhwc, %a_nhwc)
      %c3_nhwc: f32[1,8,8,4] = kiln::FusedConv(%res_nhwc, %w3) {layout="NHWC"}
      %c3b_nhwc: f32[1,8,8,4] = kiln::FusedConv(%c3_nhwc, %w3b) {layout="NHWC"}
      %cat_nhwc: f32[1,8,8,8] = Concat(%c3b_nhwc, %r1_nhwc) {axis=3}
      %gap_nhwc: f32[1,1,1,8] = ReduceMean(%cat_nhwc) {axes=[1,2], keepdims=1}
      %fc_nhwc: f32[1,1,1,2] = kiln::FusedConv(%gap_nhwc, %w4) {layout="NHWC"}
      %fc: f32[1,2,1,1] = Transpose(%fc_nhwc) {perm=[0,3,1,2]}  # fc_to_nchw
      %lone: f32[1,3,3,3] = Conv(%y, %w)
      output %fc: f32[1,2,1,1], %lone: f32[1,3,3,3]
    }
    "#);
}

#[test]
fn a_region_with_heavy_boundaries_stays_nchw() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,3,8,8]");
    let (fc, r1) = backbone(&mut b, x);
    b.output(fc);
    // r1 is also a graph output: one more transpose back, now more than a quarter of what
    // the convolutions read.
    b.output(r1);
    let (after, m) = layout_pass(&b.model());
    assert!(m.graph.nodes.iter().all(|n| n.attr_str("layout").is_none() && n.op_type != "Transpose"), "{after}");
}
