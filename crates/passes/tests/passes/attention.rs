use crate::build::*;
use kiln_ir::ValueId;
use kiln_passes::{Dce, FuseAttention, InferShapes};

#[test]
fn bert_style_attention_fuses() {
    // Q (N,H,S,D) from a transposed projection, K given as (N,S,H,D) transposed to (N,H,D,S).
    let mut b = B::new();
    let q = b.input("q", "f32[N,2,S,4]");
    let k = b.input("k", "f32[N,S,2,4]");
    let v = b.input("v", "f32[N,2,S,4]");
    let mask = b.input("mask", "f32[N,1,1,S]");
    let kt = b.op("kt", "Transpose", &[k], vec![("perm", ints(&[0, 2, 3, 1]))]);
    let s = b.op("scores", "MatMul", &[q, kt], vec![]);
    let c = b.scalar("sqrt_d", 2.0);
    let scaled = b.op("scaled", "Div", &[s, c], vec![]);
    let masked = b.op("masked", "Add", &[mask, scaled], vec![]);
    let p = b.op("p", "Softmax", &[masked], vec![("axis", int(-1))]);
    let y = b.op("y", "MatMul", &[p, v], vec![]);
    b.output(y);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseAttention), Box::new(Dce::default())]);
    let shapes: &[(&str, &[usize])] = &[("q", &[1, 2, 3, 4]), ("k", &[1, 3, 2, 4]), ("v", &[1, 2, 3, 4]), ("mask", &[1, 1, 1, 3])];
    same_outputs(&m, &after, shapes, 1e-6);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %q: f32[N,2,S,4]
      input %k: f32[N,S,2,4]
      input %v: f32[N,2,S,4]
      input %mask: f32[N,1,1,S]
      init %sqrt_d = f32[] [2]
      %kt: ?[?] = Transpose(%k) {perm=[0,2,3,1]}
      %scores: ?[?] = MatMul(%q, %kt)
      %scaled: ?[?] = Div(%scores, %sqrt_d)
      %masked: ?[?] = Add(%mask, %scaled)
      %p: ?[?] = Softmax(%masked) {axis=-1}
      %y: ?[?] = MatMul(%p, %v)
      output %y: ?[?]
    }
    --- infer-shapes, fuse-attention, dce --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %q: f32[N,2,S,4]
      input %k: f32[N,S,2,4]
      input %v: f32[N,2,S,4]
      input %mask: f32[N,1,1,S]
      %k_t: f32[N,2,S,4] = Transpose(%k) {perm=[0,2,1,3]}
      %y: f32[N,2,S,4] = kiln::Attention(%q, %k_t, %v, %mask) {k_transposed=0, scale=0.5}
      output %y: f32[N,2,S,4]
    }
    "#);
}

#[test]
fn prescaled_query_and_plain_transpose_fuse() {
    // PP-OCR style: Q scaled before the product, K' = Transpose(K, swap last two), softmax on
    // axis 3 of a rank-4 tensor.
    let mut b = B::new().opset(11);
    let q = b.input("q", "f32[1,2,5,4]");
    let k = b.input("k", "f32[1,2,5,4]");
    let v = b.input("v", "f32[1,2,5,4]");
    let c = b.f32s("c", &[1], &[0.5]);
    let qs = b.op("qs", "Mul", &[q, c], vec![]);
    let kt = b.op("kt", "Transpose", &[k], vec![("perm", ints(&[0, 1, 3, 2]))]);
    let s = b.op("scores", "MatMul", &[qs, kt], vec![]);
    let p = b.op("p", "Softmax", &[s], vec![("axis", int(3))]);
    let y = b.op("y", "MatMul", &[p, v], vec![]);
    b.output(y);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseAttention), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-6);
    insta::assert_snapshot!(text, @r#"
    model ir_version=8 opsets=[ai.onnx=11]
    graph "g" {
      input %q: f32[1,2,5,4]
      input %k: f32[1,2,5,4]
      input %v: f32[1,2,5,4]
      init %c = f32[1] [0.5]
      %qs: ?[?] = Mul(%q, %c)
      %kt: ?[?] = Transpose(%k) {perm=[0,1,3,2]}
      %scores: ?[?] = MatMul(%qs, %kt)
      %p: ?[?] = Softmax(%scores) {axis=3}
      %y: ?[?] = MatMul(%p, %v)
      output %y: ?[?]
    }
    --- infer-shapes, fuse-attention, dce --->
    model ir_version=8 opsets=[ai.onnx=11, kiln=1]
    graph "g" {
      input %q: f32[1,2,5,4]
      input %k: f32[1,2,5,4]
      input %v: f32[1,2,5,4]
      %y: f32[1,2,5,4] = kiln::Attention(%q, %k, %v, _) {k_transposed=0, scale=0.5}
      output %y: f32[1,2,5,4]
    }
    "#);
}

#[test]
fn a_mask_added_before_the_scale_is_not_attention() {
    let mut b = B::new();
    let q = b.input("q", "f32[1,2,3,4]");
    let kt = b.input("kt", "f32[1,2,4,3]");
    let v = b.input("v", "f32[1,2,3,4]");
    let mask = b.input("mask", "f32[1,1,1,3]");
    let s = b.op("scores", "MatMul", &[q, kt], vec![]);
    let masked = b.op("masked", "Add", &[s, mask], vec![]);
    let c = b.scalar("c", 2.0);
    let scaled = b.op("scaled", "Div", &[masked, c], vec![]);
    let p = b.op("p", "Softmax", &[scaled], vec![("axis", int(-1))]);
    let y = b.op("y", "MatMul", &[p, v], vec![]);
    b.output(y);
    let (text, _) = before_after(&b.model(), vec![Box::new(FuseAttention)]);
    assert!(!text.contains("kiln::Attention"), "{text}");
}

/// Inputs q, k, v of type `ty` (`[.., 8]`) split into 2 heads of 4 by Reshape + Transpose:
/// Q and V as `[.., 2, S, 4]`, K transposed as `[.., 2, 4, S]`.
fn split_heads(b: &mut B, ty: &str) -> (ValueId, ValueId, ValueId) {
    let split = b.i64s("split", &[0, 0, 2, 4]);
    let mut heads = |name: &str, perm: &[i64]| {
        let x = b.input(name, ty);
        let x4 = b.op(&format!("{name}4"), "Reshape", &[x, split], vec![]);
        b.op(&format!("{name}h"), "Transpose", &[x4], vec![("perm", ints(perm))])
    };
    (heads("q", &[0, 2, 1, 3]), heads("k", &[0, 2, 3, 1]), heads("v", &[0, 2, 1, 3]))
}

#[test]
fn heads_split_and_merged_around_attention_are_absorbed() {
    // BERT as exported: Q, K, V [N,S,8] split into 2 heads of 4 by Reshape + Transpose, the
    // output merged back by Transpose + Reshape to a shape read from the merged value.
    let mut b = B::new();
    let (qh, kt, vh) = split_heads(&mut b, "f32[N,S,8]");
    let mask = b.input("mask", "f32[N,1,1,S]");
    let s = b.op("scores", "MatMul", &[qh, kt], vec![]);
    let c = b.scalar("sqrt_d", 2.0);
    let scaled = b.op("scaled", "Div", &[s, c], vec![]);
    let masked = b.op("masked", "Add", &[scaled, mask], vec![]);
    let p = b.op("p", "Softmax", &[masked], vec![("axis", int(-1))]);
    let y = b.op("y", "MatMul", &[p, vh], vec![]);
    let yt = b.op("yt", "Transpose", &[y], vec![("perm", ints(&[0, 2, 1, 3]))]);
    let shape = b.op("shape", "Shape", &[yt], vec![]);
    let (i0, i1, hd) = (b.i64s("i0", &[0]), b.i64s("i1", &[1]), b.i64s("hd", &[8]));
    let n = b.op("n", "Gather", &[shape, i0], vec![]);
    let sq = b.op("sq", "Gather", &[shape, i1], vec![]);
    let merge = b.op("merge", "Concat", &[n, sq, hd], vec![("axis", int(0))]);
    let out = b.op("out", "Reshape", &[yt, merge], vec![]);
    b.output(out);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseAttention), Box::new(Dce::default())]);
    let shapes: &[(&str, &[usize])] = &[("q", &[2, 3, 8]), ("k", &[2, 3, 8]), ("v", &[2, 3, 8]), ("mask", &[2, 1, 1, 3])];
    same_outputs(&m, &after, shapes, 1e-6);
    let fused = text.split("--->").nth(1).unwrap_or_default();
    insta::assert_snapshot!(fused, @r#"
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %q: f32[N,S,8]
      input %k: f32[N,S,8]
      input %v: f32[N,S,8]
      input %mask: f32[N,1,1,S]
      %out: f32[N,S,8] = kiln::Attention(%q, %k, %v, %mask) {k_transposed=0, num_heads=2, scale=0.5}
      output %out: f32[N,S,8]
    }
    "#);
}

#[test]
fn heads_merged_to_another_layout_keep_the_plain_op() {
    // The output's Reshape does not merge the heads back into [N,S,8]: nothing is absorbed.
    let mut b = B::new();
    let (qh, kt, vh) = split_heads(&mut b, "f32[1,3,8]");
    let s = b.op("scores", "MatMul", &[qh, kt], vec![]);
    let p = b.op("p", "Softmax", &[s], vec![("axis", int(-1))]);
    let y = b.op("y", "MatMul", &[p, vh], vec![]);
    let yt = b.op("yt", "Transpose", &[y], vec![("perm", ints(&[0, 2, 1, 3]))]);
    let flat = b.i64s("flat", &[1, 24]);
    let out = b.op("out", "Reshape", &[yt, flat], vec![]);
    b.output(out);
    let m = b.model();
    let (text, after) = before_after(&m, vec![Box::new(InferShapes::default()), Box::new(FuseAttention), Box::new(Dce::default())]);
    same_outputs(&m, &after, &[], 1e-6);
    assert!(text.contains("kiln::Attention") && !text.contains("num_heads"), "{text}");
}
