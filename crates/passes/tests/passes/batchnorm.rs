use crate::build::*;
use kiln_passes::{Dce, FoldBatchNorm, InferShapes};

fn bn(b: &mut B, x: kiln_ir::ValueId, c: usize, name: &str) -> kiln_ir::ValueId {
    let scale = b.f32s(&format!("{name}_scale"), &[c], &values(c, 11).iter().map(|v| 1.0 + v / 2.0).collect::<Vec<_>>());
    let bias = b.rand(&format!("{name}_bias"), &[c], 12);
    let mean = b.rand(&format!("{name}_mean"), &[c], 13);
    let var = b.f32s(&format!("{name}_var"), &[c], &values(c, 14).iter().map(|v| 1.5 + v).collect::<Vec<_>>());
    b.op(name, "BatchNormalization", &[x, scale, bias, mean, var], vec![("epsilon", float(1e-3))])
}

#[test]
fn batchnorm_folds_into_conv() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,2,5,5]");
    let w = b.rand("w", &[3, 2, 3, 3], 1);
    let cb = b.rand("cb", &[3], 2);
    let c = b.op("conv", "Conv", &[x, w, cb], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let y = bn(&mut b, c, 3, "bn");
    b.output(y);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(FoldBatchNorm), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,2,5,5]
      init %w = f32[3,2,3,3] <54 values>
      init %cb = f32[3] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905]
      init %bn_scale = f32[3] [1.4704654216766357, 0.6508181095123291, 0.6756148338317871]
      init %bn_bias = f32[3] [-0.3690681457519531, 0.11705350875854492, -0.562698245048523]
      init %bn_mean = f32[3] [0.32093286514282227, 0.9324709177017212, -0.47662603855133057]
      init %bn_var = f32[3] [0.5109338760375977, 1.2478883266448975, 1.1094460487365723]
      %conv: ?[?] = Conv(%x, %w, %cb) {pads=[1,1,1,1]}
      %bn: ?[?] = BatchNormalization(%conv, %bn_scale, %bn_bias, %bn_mean, %bn_var) {epsilon=0.001}
      output %bn: ?[?]
    }
    --- fold-batchnorm, dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,2,5,5]
      init %w_bn = f32[3,2,3,3] <54 values>
      init %bn_bias_2 = f32[3] [0.4735284745693207, -0.447605699300766, 0.1125507578253746]
      %bn: ?[?] = Conv(%x, %w_bn, %bn_bias_2) {pads=[1,1,1,1]}
      output %bn: ?[?]
    }
    "#);
}

#[test]
fn batchnorm_folds_into_conv_transpose_per_group_and_through_a_bias_add() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,4,3,3]");
    let w = b.rand("w", &[4, 3, 2, 2], 1);
    let y = b.op("ct", "ConvTranspose", &[x, w], vec![("strides", ints(&[2, 2])), ("group", int(2))]);
    let y = bn(&mut b, y, 6, "bn");
    b.output(y);
    // ConvTranspose + per-channel Add (how Paddle exports a bias) + BN.
    let w2 = b.rand("w2", &[4, 2, 2, 2], 2);
    let c2 = b.rand("c2", &[1, 2, 1, 1], 3);
    let y2 = b.op("ct2", "ConvTranspose", &[x, w2], vec![("strides", ints(&[2, 2]))]);
    let y2 = b.op("add2", "Add", &[y2, c2], vec![]);
    let y2 = bn(&mut b, y2, 2, "bn2");
    b.output(y2);
    // Conv + scalar Add + BN.
    let w3 = b.rand("w3", &[3, 4, 1, 1], 4);
    let c3 = b.f32s("c3", &[1], &[0.25]);
    let y3 = b.op("conv3", "Conv", &[x, w3], vec![]);
    let y3 = b.op("add3", "Add", &[c3, y3], vec![]);
    let y3 = bn(&mut b, y3, 3, "bn3");
    b.output(y3);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(FoldBatchNorm), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,4,3,3]
      init %w = f32[4,3,2,2] <48 values>
      init %bn_scale = f32[6] [1.4704654216766357, 0.6508181095123291, 0.6756148338317871, 1.0341086387634277, 1.246764898300171, 1.2300903797149658]
      init %bn_bias = f32[6] [-0.3690681457519531, 0.11705350875854492, -0.562698245048523, 0.03151142597198486, -0.6828262805938721, 0.33948397636413574]
      init %bn_mean = f32[6] [0.32093286514282227, 0.9324709177017212, -0.47662603855133057, -0.005194187164306641, 0.1408175230026245, 0.21878719329833984]
      init %bn_var = f32[6] [0.5109338760375977, 1.2478883266448975, 1.1094460487365723, 1.4581001996994019, 2.464461326599121, 1.5980905294418335]
      init %w2 = f32[4,2,2,2] <32 values>
      init %c2 = f32[1,2,1,1] [-0.5790774822235107, 0.7782973051071167]
      init %bn2_scale = f32[2] [1.4704654216766357, 0.6508181095123291]
      init %bn2_bias = f32[2] [-0.3690681457519531, 0.11705350875854492]
      init %bn2_mean = f32[2] [0.32093286514282227, 0.9324709177017212]
      init %bn2_var = f32[2] [0.5109338760375977, 1.2478883266448975]
      init %w3 = f32[3,4,1,1] <12 values>
      init %c3 = f32[1] [0.25]
      init %bn3_scale = f32[3] [1.4704654216766357, 0.6508181095123291, 0.6756148338317871]
      init %bn3_bias = f32[3] [-0.3690681457519531, 0.11705350875854492, -0.562698245048523]
      init %bn3_mean = f32[3] [0.32093286514282227, 0.9324709177017212, -0.47662603855133057]
      init %bn3_var = f32[3] [0.5109338760375977, 1.2478883266448975, 1.1094460487365723]
      %ct: ?[?] = ConvTranspose(%x, %w) {group=2, strides=[2,2]}
      %bn: ?[?] = BatchNormalization(%ct, %bn_scale, %bn_bias, %bn_mean, %bn_var) {epsilon=0.001}
      %ct2: ?[?] = ConvTranspose(%x, %w2) {strides=[2,2]}
      %add2: ?[?] = Add(%ct2, %c2)
      %bn2: ?[?] = BatchNormalization(%add2, %bn2_scale, %bn2_bias, %bn2_mean, %bn2_var) {epsilon=0.001}
      %conv3: ?[?] = Conv(%x, %w3)
      %add3: ?[?] = Add(%c3, %conv3)
      %bn3: ?[?] = BatchNormalization(%add3, %bn3_scale, %bn3_bias, %bn3_mean, %bn3_var) {epsilon=0.001}
      output %bn: ?[?], %bn2: ?[?], %bn3: ?[?]
    }
    --- fold-batchnorm, dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,4,3,3]
      init %w_bn = f32[4,3,2,2] <48 values>
      init %bn_bias_2 = f32[6] [-1.0286399126052856, -0.425988107919693, -0.2571159303188324, 0.03595815971493721, -0.7946392297744751, 0.126659095287323]
      init %w2_bn = f32[4,2,2,2] <32 values>
      init %bn2_bias_2 = f32[2] [-2.218742847442627, 0.027267662808299065]
      init %w3_bn = f32[3,4,1,1] <12 values>
      init %bn3_bias_2 = f32[3] [-0.5148472785949707, -0.2803960144519806, -0.09683182835578918]
      %bn: ?[?] = ConvTranspose(%x, %w_bn, %bn_bias_2) {group=2, strides=[2,2]}
      %bn2: ?[?] = ConvTranspose(%x, %w2_bn, %bn2_bias_2) {strides=[2,2]}
      %bn3: ?[?] = Conv(%x, %w3_bn, %bn3_bias_2)
      output %bn: ?[?], %bn2: ?[?], %bn3: ?[?]
    }
    "#);
}

#[test]
fn batchnorm_folds_into_gemm_and_matmul_add() {
    let mut b = B::new();
    let a = b.input("a", "f32[2,4]");
    let w = b.rand("w", &[3, 4], 3);
    let c = b.rand("c", &[3], 4);
    let g = b.op("gemm", "Gemm", &[a, w, c], vec![("transB", int(1)), ("beta", float(0.5))]);
    let y1 = bn(&mut b, g, 3, "bn1");
    let w2 = b.rand("w2", &[4, 3], 5);
    let mm = b.op("mm", "MatMul", &[a, w2], vec![]);
    let c2 = b.rand("c2", &[3], 6);
    let add = b.op("add", "Add", &[mm, c2], vec![]);
    let y2 = bn(&mut b, add, 3, "bn2");
    b.output(y1);
    b.output(y2);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FoldBatchNorm), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %a: f32[2,4]
      init %w = f32[3,4] <12 values>
      init %c = f32[3] [0.11092352867126465, -0.4062854051589966, 0.7487246990203857]
      init %bn1_scale = f32[3] [1.4704654216766357, 0.6508181095123291, 0.6756148338317871]
      init %bn1_bias = f32[3] [-0.3690681457519531, 0.11705350875854492, -0.562698245048523]
      init %bn1_mean = f32[3] [0.32093286514282227, 0.9324709177017212, -0.47662603855133057]
      init %bn1_var = f32[3] [0.5109338760375977, 1.2478883266448975, 1.1094460487365723]
      init %w2 = f32[4,3] <12 values>
      init %c2 = f32[3] [-0.509074330329895, -0.775450587272644, 0.920868992805481]
      init %bn2_scale = f32[3] [1.4704654216766357, 0.6508181095123291, 0.6756148338317871]
      init %bn2_bias = f32[3] [-0.3690681457519531, 0.11705350875854492, -0.562698245048523]
      init %bn2_mean = f32[3] [0.32093286514282227, 0.9324709177017212, -0.47662603855133057]
      init %bn2_var = f32[3] [0.5109338760375977, 1.2478883266448975, 1.1094460487365723]
      %gemm: ?[?] = Gemm(%a, %w, %c) {beta=0.5, transB=1}
      %bn1: ?[?] = BatchNormalization(%gemm, %bn1_scale, %bn1_bias, %bn1_mean, %bn1_var) {epsilon=0.001}
      %mm: ?[?] = MatMul(%a, %w2)
      %add: ?[?] = Add(%mm, %c2)
      %bn2: ?[?] = BatchNormalization(%add, %bn2_scale, %bn2_bias, %bn2_mean, %bn2_var) {epsilon=0.001}
      output %bn1: ?[?], %bn2: ?[?]
    }
    --- infer-shapes, fold-batchnorm, dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %a: f32[2,4]
      init %w_bn = f32[3,4] <12 values>
      init %bn1_bias_2 = f32[3] [-0.9146565794944763, -0.5442920327186584, -0.017098600044846535]
      init %w2_bn = f32[4,3] <12 values>
      init %bn2_bias_2 = f32[3] [-2.0748746395111084, -0.8775860667228699, 0.33328670263290405]
      %bn1: f32[2,3] = Gemm(%a, %w_bn, %bn1_bias_2) {beta=1.0, transB=1}
      %mm_bn: f32[2,3] = MatMul(%a, %w2_bn)
      %bn2: f32[2,3] = Add(%mm_bn, %bn2_bias_2)
      output %bn1: f32[2,3], %bn2: f32[2,3]
    }
    "#);
}

#[test]
fn batchnorm_after_a_shared_conv_stays() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,2,5,5]");
    let w = b.rand("w", &[3, 2, 1, 1], 1);
    let c = b.op("conv", "Conv", &[x, w], vec![]);
    let y = bn(&mut b, c, 3, "bn");
    let z = b.op("z", "Relu", &[c], vec![]);
    b.output(y);
    b.output(z);
    let m = b.model();
    let (text, _) = before_after(&m, vec![Box::new(FoldBatchNorm)]);
    assert_eq!(text.matches("BatchNormalization(").count(), 2, "{text}");
}

#[test]
fn a_constant_scale_folds_into_conv() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,2,4,4]");
    let w = b.rand("w", &[3, 2, 3, 3], 1);
    let c = b.op("conv", "Conv", &[x, w], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let per_channel = b.f32s("per_channel", &[3, 1, 1], &[2.0, -1.0, 0.5]);
    let scaled = b.op("scaled", "Mul", &[per_channel, c], vec![]);
    let w2 = b.rand("w2", &[3, 3, 1, 1], 2);
    let c2 = b.op("conv2", "Conv", &[scaled, w2], vec![]);
    let k = b.f32s("k", &[1], &[1.5]);
    let y = b.op("y", "Mul", &[c2, k], vec![]);
    let wrong_axis = b.f32s("wrong_axis", &[4], &[1.0, 2.0, 3.0, 4.0]);
    let w3 = b.rand("w3", &[3, 3, 1, 1], 3);
    let c3 = b.op("conv3", "Conv", &[y, w3], vec![]);
    let z = b.op("z", "Mul", &[c3, wrong_axis], vec![]);
    b.output(z);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(FoldBatchNorm), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-5);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,2,4,4]
      init %w = f32[3,2,3,3] <54 values>
      init %per_channel = f32[3,1,1] [2, -1, 0.5]
      init %w2 = f32[3,3,1,1] <9 values>
      init %k = f32[1] [1.5]
      init %wrong_axis = f32[4] [1, 2, 3, 4]
      init %w3 = f32[3,3,1,1] <9 values>
      %conv: ?[?] = Conv(%x, %w) {pads=[1,1,1,1]}
      %scaled: ?[?] = Mul(%per_channel, %conv)
      %conv2: ?[?] = Conv(%scaled, %w2)
      %y: ?[?] = Mul(%conv2, %k)
      %conv3: ?[?] = Conv(%y, %w3)
      %z: ?[?] = Mul(%conv3, %wrong_axis)
      output %z: ?[?]
    }
    --- fold-batchnorm, dce --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[1,2,4,4]
      init %wrong_axis = f32[4] [1, 2, 3, 4]
      init %w3 = f32[3,3,1,1] <9 values>
      init %w_bn = f32[3,2,3,3] <54 values>
      init %w2_bn = f32[3,3,1,1] <9 values>
      %scaled: ?[?] = Conv(%x, %w_bn) {pads=[1,1,1,1]}
      %y: ?[?] = Conv(%scaled, %w2_bn)
      %conv3: ?[?] = Conv(%y, %w3)
      %z: ?[?] = Mul(%conv3, %wrong_axis)
      output %z: ?[?]
    }
    "#);
}
