use crate::build::*;
use kiln_ir::{Graph, GraphPatch};
use kiln_passes::{Pass, PassError, default_pipeline, optimize, phase_names, pipeline_after, pipeline_until};

#[test]
fn phases_are_named_and_stoppable() {
    insta::assert_snapshot!(phase_names().join("\n"), @r#"
    infer-shapes
    fuse-qdq
    fuse-lowp
    fold-constants
    remove-identities
    simplify-layout
    dce
    refine-shapes
    fold-batchnorm
    fuse-layernorm
    fuse-gelu
    fuse-hardswish
    fuse-attention
    fuse-activation
    choose-layout
    fuse-elementwise
    cleanup
    fuse-qkv
    "#);
    let until = pipeline_until("fold-constants").expect("known phase");
    assert_eq!(until.iter().map(|p| p.name()).collect::<Vec<_>>(), ["infer-shapes", "fuse-qdq", "fuse-lowp", "fold-constants"]);
    let after = pipeline_after("fuse-attention").expect("known phase");
    assert_eq!(
        after.iter().map(|p| p.name()).collect::<Vec<_>>(),
        ["fuse-qdq", "fuse-lowp", "fuse-activation", "choose-layout", "fuse-elementwise", "cleanup", "fuse-qkv"]
    );
    let err = pipeline_until("lower").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("no phase named 'lower' (phases: infer-shapes, fuse-qdq, fuse-lowp, fold-constants"), "{err}");
}

/// A pass that always has "something" to do.
struct Restless;

impl Pass for Restless {
    fn name(&self) -> &'static str {
        "restless"
    }
    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let mut p = GraphPatch::new(g, "rename nothing");
        p.set_facts(g.outputs[0], None, None);
        Ok(Some(p))
    }
}

#[test]
fn a_pass_that_never_converges_is_named() {
    let mut b = B::new();
    let x = b.input("x", "f32[2]");
    let y = b.op("y", "Relu", &[x], vec![]);
    b.output(y);
    let err = optimize(&mut b.model(), &[Box::new(Restless)]).err().map(|e| e.to_string());
    insta::assert_snapshot!(err.unwrap_or_default(), @"pass restless did not converge: it still returned a patch after 64 rounds (last: rename nothing)");
}

#[test]
fn the_default_pipeline_on_a_small_cnn() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,3,8,8]");
    let w = b.rand("w", &[4, 3, 3, 3], 1);
    let c = b.op("conv", "Conv", &[x, w], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let scale = b.f32s("scale", &[4], &[1.0, 0.5, 2.0, 1.5]);
    let bias = b.f32s("bias", &[4], &[0.0, 0.1, -0.1, 0.2]);
    let mean = b.f32s("mean", &[4], &[0.1, 0.2, 0.3, 0.4]);
    let var = b.f32s("var", &[4], &[1.0, 2.0, 0.5, 1.5]);
    let bn = b.op("bn", "BatchNormalization", &[c, scale, bias, mean, var], vec![]);
    let r = b.op("relu", "Relu", &[bn], vec![]);
    let id = b.op("id", "Identity", &[r], vec![]);
    let gp = b.op("gap", "GlobalAveragePool", &[id], vec![]);
    let shape = b.i64s("shape", &[0, -1]);
    let flat = b.op("flat", "Reshape", &[gp, shape], vec![]);
    let fw = b.rand("fw", &[4, 2], 2);
    let fb = b.f32s("fb", &[2], &[0.5, -0.5]);
    let mm = b.op("fc", "MatMul", &[flat, fw], vec![]);
    let logits = b.op("logits", "Add", &[mm, fb], vec![]);
    let p = b.op("p", "Softmax", &[logits], vec![("axis", int(-1))]);
    b.output(p);
    let m = b.model();
    let (text, after) = before_after(&m, default_pipeline());
    same_outputs(&m, &after, &[("x", &[2, 3, 8, 8])], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,3,8,8]
      init %w = f32[4,3,3,3] <108 values>
      init %scale = f32[4] [1, 0.5, 2, 1.5]
      init %bias = f32[4] [0, 0.10000000149011612, -0.10000000149011612, 0.20000000298023224]
      init %mean = f32[4] [0.10000000149011612, 0.20000000298023224, 0.30000001192092896, 0.4000000059604645]
      init %var = f32[4] [1, 2, 0.5, 1.5]
      init %shape = i64[2] [0, -1]
      init %fw = f32[4,2] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479, -0.9192653894424438, -0.45354902744293213, 0.8245338201522827, -0.03400862216949463]
      init %fb = f32[2] [0.5, -0.5]
      %conv: ?[?] = Conv(%x, %w) {pads=[1,1,1,1]}
      %bn: ?[?] = BatchNormalization(%conv, %scale, %bias, %mean, %var)
      %relu: ?[?] = Relu(%bn)
      %id: ?[?] = Identity(%relu)
      %gap: ?[?] = GlobalAveragePool(%id)
      %flat: ?[?] = Reshape(%gap, %shape)
      %fc: ?[?] = MatMul(%flat, %fw)
      %logits: ?[?] = Add(%fc, %fb)
      %p: ?[?] = Softmax(%logits) {axis=-1}
      output %p: ?[?]
    }
    --- infer-shapes, fuse-qdq, fuse-lowp, fold-constants, remove-identities, simplify-layout, dce, refine-shapes, fold-batchnorm, fuse-layernorm, fuse-gelu, fuse-hardswish, fuse-attention, fuse-activation, choose-layout, fuse-elementwise, cleanup, fuse-qkv --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[N,3,8,8]
      init %shape = i64[2] [0, -1]
      init %fw = f32[4,2] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479, -0.9192653894424438, -0.45354902744293213, 0.8245338201522827, -0.03400862216949463]
      init %fb = f32[2] [0.5, -0.5]
      init %w_bn = f32[4,3,3,3] <108 values>
      init %bn_bias = f32[4] [-0.09999950230121613, 0.029289498925209045, -0.9485197067260742, -0.28989630937576294]
      %relu: f32[N,4,8,8] = kiln::FusedConv(%x, %w_bn, %bn_bias) {activation="relu", pads=[1,1,1,1]}
      %gap: f32[N,4,1,1] = GlobalAveragePool(%relu)
      %flat: f32[N,4] = Reshape(%gap, %shape)
      %logits: f32[N,2] = kiln::FusedMatMul(%flat, %fw, %fb) {activation="none"}
      %p: f32[N,2] = Softmax(%logits) {axis=-1}
      output %p: f32[N,2]
    }
    "#);
}
