use crate::build::*;
use kiln_ir::ValueId;
use kiln_passes::{FuseQkv, InferShapes};

/// x [N,S,4] -> three projections to [N,S,6] (weights [4,6]; biases [6] and a mask when
/// `bias`) -> kiln::Attention with 2 heads. Returns the builder and the K projection.
fn projected_attention(bias: bool) -> (B, ValueId) {
    let mut b = B::new();
    let x = b.input("x", "f32[N,S,4]");
    let mask = bias.then(|| b.input("mask", "f32[N,1,1,S]"));
    let mut proj = |name: &str, seed: u64| {
        let w = b.rand(&format!("w{name}"), &[4, 6], seed);
        let c = bias.then(|| b.rand(&format!("b{name}"), &[6], seed + 10));
        b.node(&[name], "kiln", "FusedMatMul", vec![Some(x), Some(w), c], vec![("activation", string("none"))])[0]
    };
    let (q, k, v) = (proj("q", 1), proj("k", 2), proj("v", 3));
    let attrs = vec![("num_heads", int(2)), ("scale", float(0.5))];
    let y = b.node(&["y"], "kiln", "Attention", vec![Some(q), Some(k), Some(v), mask], attrs)[0];
    b.output(y);
    (b, k)
}

#[test]
fn three_projections_become_one_product() {
    let (b, _) = projected_attention(true);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseQkv)]);
    same_outputs(&m, &after, &[("x", &[2, 3, 4]), ("mask", &[2, 1, 1, 3])], 0.0);
    let fused = text.split("--->").nth(1).unwrap_or_default();
    insta::assert_snapshot!(fused, @r#"
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[N,S,4]
      input %mask: f32[N,1,1,S]
      init %wq_qkv = f32[4,18] <72 values>
      init %bq_qkv = f32[18] <18 values>
      %q_qkv: f32[N,S,18] = kiln::FusedMatMul(%x, %wq_qkv, %bq_qkv) {activation="none"}
      %y: f32[N,S,6] = kiln::Attention(%q_qkv, _, _, %mask) {num_heads=2, scale=0.5}
      output %y: f32[N,S,6]
    }
    "#);
}

#[test]
fn projections_without_bias_fuse_and_a_shared_one_does_not() {
    let (b, _) = projected_attention(false);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseQkv)]);
    same_outputs(&m, &after, &[("x", &[1, 5, 4])], 0.0);
    assert!(text.contains("kiln::Attention(%q_qkv)"), "{text}");
    // K also read by another node: the projections stay apart.
    let (mut b, k) = projected_attention(true);
    let extra = b.op("extra", "Relu", &[k], vec![]);
    b.output(extra);
    let (text, _) = before_after(&b.model(), vec![Box::new(InferShapes::default()), Box::new(FuseQkv)]);
    assert!(!text.contains("_qkv"), "{text}");
}

/// Three dynamic kiln::QMatMul projections (int8 weights, per-column scales for Q, one scale
/// for K and V) -> one QMatMul: x quantized once, the same result to the last bit.
#[test]
fn int8_projections_become_one_product() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,S,4]");
    let mut proj = |name: &str, seed: u64, per_column: bool| {
        let wv: Vec<i8> = values(24, seed).iter().map(|v| (v * 127.0) as i8).collect();
        let w = b.init(&format!("w{name}"), kiln_tensor::Tensor::from_vec(vec![4, 6], wv).expect("tensor"));
        let s = if per_column { b.f32s(&format!("s{name}"), &[6], &[0.01, 0.02, 0.03, 0.01, 0.02, 0.03]) } else { b.scalar(&format!("s{name}"), 0.015) };
        let c = b.rand(&format!("b{name}"), &[6], seed + 10);
        b.node(&[name], "kiln", "QMatMul", vec![Some(x), None, None, Some(w), Some(s), None, Some(c)], vec![("activation", string("none"))])[0]
    };
    let (q, k, v) = (proj("q", 1, true), proj("k", 2, false), proj("v", 3, false));
    let y = b.node(&["y"], "kiln", "Attention", vec![Some(q), Some(k), Some(v)], vec![("num_heads", int(2))])[0];
    b.output(y);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseQkv)]);
    same_outputs(&m, &after, &[("x", &[2, 3, 4])], 0.0);
    assert!(text.contains("%q_qkv: f32[N,S,18] = kiln::QMatMul(%x, _, _, %wq_qkv, %sq_qkv, _, %bq_qkv) {activation=\"none\"}"), "{text}");
    assert!(text.contains("init %sq_qkv = f32[18]"), "{text}");
}

/// Weight-only projections: uint4 weights in groups of 2 along K with zero points (scales and
/// zero points joined per group), and bf16 weights computing in bf16; each becomes one
/// kiln::WMatMul with the same result to the last bit. Mixed storage types stay apart.
#[test]
fn weight_only_projections_become_one_product() {
    use kiln_tensor::{DType, Data, Tensor};
    let build = |types: [DType; 3]| {
        let mut b = B::new();
        let x = b.input("x", "f32[N,S,4]");
        let mut proj = |name: &str, seed: u64, dt: DType| {
            let (ins, attrs) = if dt == DType::U4 {
                let w = b.init(&format!("w{name}"), Tensor::new(vec![4, 6], Data::U4((0..24).map(|i| ((i * 5 + seed as usize) % 16) as u8).collect())).expect("u4"));
                let s = b.f32s(&format!("s{name}"), &[2, 6], &values(12, seed).iter().map(|v| 0.01 + v.abs() * 0.02).collect::<Vec<_>>());
                let z = b.init(&format!("z{name}"), Tensor::new(vec![2, 6], Data::U4((0..12).map(|i| ((i + seed as usize) % 16) as u8).collect())).expect("u4"));
                (vec![Some(x), Some(w), Some(s), Some(z)], vec![("block_size", int(2)), ("activation", string("none"))])
            } else {
                let w = b.init(&format!("w{name}"), Tensor::from_vec(vec![4, 6], values(24, seed)).expect("f32").cast(dt).expect("cast"));
                (vec![Some(x), Some(w)], vec![("compute", string("bf16")), ("activation", string("none"))])
            };
            b.node(&[name], "kiln", "WMatMul", ins, attrs)[0]
        };
        let (q, k, v) = (proj("q", 1, types[0]), proj("k", 2, types[1]), proj("v", 3, types[2]));
        let y = b.node(&["y"], "kiln", "Attention", vec![Some(q), Some(k), Some(v)], vec![("num_heads", int(2))])[0];
        b.output(y);
        b.model()
    };
    let m = build([DType::U4; 3]);
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseQkv)]);
    same_outputs(&m, &after, &[("x", &[2, 3, 4])], 0.0);
    assert!(text.contains("%q_qkv: f32[N,S,18] = kiln::WMatMul(%x, %wq_qkv, %sq_qkv, %wq_qkv_zp) {activation=\"none\", block_size=2}"), "{text}");
    assert!(text.contains("init %sq_qkv = f32[2,18]") && text.contains("init %wq_qkv_zp = u4[2,18]"), "{text}");
    let m = build([DType::BF16; 3]);
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseQkv)]);
    same_outputs(&m, &after, &[("x", &[2, 3, 4])], 0.0);
    assert!(text.contains("kiln::WMatMul(%x, %wq_qkv) {activation=\"none\", compute=\"bf16\"}") && text.contains("init %wq_qkv = bf16[4,18]"), "{text}");
    let m = build([DType::BF16, DType::F16, DType::BF16]);
    let (text, _) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseQkv)]);
    assert!(!text.contains("_qkv"), "{text}");
}
