use crate::build::*;
use kiln_passes::{InferShapes, Pass};

fn infer(m: &kiln_ir::Model) -> String {
    run(m, InferShapes::default())
}

#[test]
fn broadcasting_with_symbols_and_products() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,1,8]");
    let y = b.input("y", "f32[1,S,8]");
    let z = b.input("z", "f32[M,S,1]");
    let s = b.op("sum", "Add", &[x, y], vec![]);
    let r = b.op("relu", "Relu", &[s], vec![]);
    let t = b.op("mixed", "Mul", &[r, z], vec![]);
    let w = b.rand("w", &[8, 4], 1);
    let mm = b.op("mm", "MatMul", &[r, w], vec![]);
    let a = b.input("a", "f32[K,8]");
    let c = b.rand("c", &[4], 2);
    let gm = b.op("gemm", "Gemm", &[a, w, c], vec![]);
    let eq = b.op("eq", "Equal", &[x, y], vec![]);
    for v in [t, mm, gm, eq] {
        b.output(v);
    }
    insta::assert_snapshot!(infer(&b.model()), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,1,8]
      input %y: f32[1,S,8]
      input %z: f32[M,S,1]
      input %a: f32[K,8]
      init %w = f32[8,4] <32 values>
      init %c = f32[4] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479]
      %sum: ?[?] = Add(%x, %y)
      %relu: ?[?] = Relu(%sum)
      %mixed: ?[?] = Mul(%relu, %z)
      %mm: ?[?] = MatMul(%relu, %w)
      %gemm: ?[?] = Gemm(%a, %w, %c)
      %eq: ?[?] = Equal(%x, %y)
      output %mixed: ?[?], %mm: ?[?], %gemm: ?[?], %eq: ?[?]
    }
    --- infer-shapes --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,1,8]
      input %y: f32[1,S,8]
      input %z: f32[M,S,1]
      input %a: f32[K,8]
      init %w = f32[8,4] <32 values>
      init %c = f32[4] [0.7309215068817139, -0.03712010383605957, 0.5765804052352905, 0.398567795753479]
      %sum: f32[N,S,8] = Add(%x, %y)
      %relu: f32[N,S,8] = Relu(%sum)
      %mixed: f32[unk_0,S,8] = Mul(%relu, %z)
      %mm: f32[N,S,4] = MatMul(%relu, %w)
      %gemm: f32[K,4] = Gemm(%a, %w, %c)
      %eq: bool[N,S,8] = Equal(%x, %y)
      output %mixed: f32[unk_0,S,8], %mm: f32[N,S,4], %gemm: f32[K,4], %eq: bool[N,S,8]
    }
    "#);
}

#[test]
fn conv_and_pool_sizes() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,3,32,32]");
    let w = b.rand("w", &[8, 3, 3, 3], 1);
    let c = b.op("conv", "Conv", &[x, w], vec![("pads", ints(&[1, 1, 1, 1])), ("strides", ints(&[2, 2]))]);
    let p = b.op("pool", "MaxPool", &[c], vec![("kernel_shape", ints(&[3, 3])), ("strides", ints(&[2, 2])), ("ceil_mode", int(1))]);
    let gp = b.op("gap", "GlobalAveragePool", &[p], vec![]);
    let img = b.input("img", "f32[1,3,H,W]");
    let same = b.op("same", "Conv", &[img, w], vec![("pads", ints(&[1, 1, 1, 1]))]);
    let w2 = b.rand("w2", &[4, 8, 1, 1], 3);
    let down = b.op("down", "Conv", &[same, w2], vec![("strides", ints(&[2, 2]))]);
    b.output(gp);
    b.output(down);
    insta::assert_snapshot!(infer(&b.model()), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,3,32,32]
      input %img: f32[1,3,H,W]
      init %w = f32[8,3,3,3] <216 values>
      init %w2 = f32[4,8,1,1] <32 values>
      %conv: ?[?] = Conv(%x, %w) {pads=[1,1,1,1], strides=[2,2]}
      %pool: ?[?] = MaxPool(%conv) {ceil_mode=1, kernel_shape=[3,3], strides=[2,2]}
      %gap: ?[?] = GlobalAveragePool(%pool)
      %same: ?[?] = Conv(%img, %w) {pads=[1,1,1,1]}
      %down: ?[?] = Conv(%same, %w2) {strides=[2,2]}
      output %gap: ?[?], %down: ?[?]
    }
    --- infer-shapes --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,3,32,32]
      input %img: f32[1,3,H,W]
      init %w = f32[8,3,3,3] <216 values>
      init %w2 = f32[4,8,1,1] <32 values>
      %conv: f32[N,8,16,16] = Conv(%x, %w) {pads=[1,1,1,1], strides=[2,2]}
      %pool: f32[N,8,8,8] = MaxPool(%conv) {ceil_mode=1, kernel_shape=[3,3], strides=[2,2]}
      %gap: f32[N,8,1,1] = GlobalAveragePool(%pool)
      %same: f32[1,8,H,W] = Conv(%img, %w) {pads=[1,1,1,1]}
      %down: f32[1,4,unk_0,unk_1] = Conv(%same, %w2) {strides=[2,2]}
      output %gap: f32[N,8,1,1], %down: f32[1,4,unk_0,unk_1]
    }
    "#);
}

#[test]
fn reshape_with_constant_and_computed_shapes() {
    let mut b = B::new();
    let x = b.input("x", "f32[batch,seq,384]");
    let keep = b.i64s("keep", &[0, 0, 12, -1]);
    let r1 = b.op("heads", "Reshape", &[x, keep], vec![]);
    let flat = b.i64s("flat", &[-1, 384]);
    let r2 = b.op("rows", "Reshape", &[x, flat], vec![]);
    let odd = b.i64s("odd", &[-1, 4, 2]);
    let r3 = b.op("odd", "Reshape", &[x, odd], vec![]);
    // MiniLM style: the target is computed from Shape at run time.
    let sh = b.op("shape", "Shape", &[x], vec![]);
    let zero = b.init("zero", kiln_tensor::Tensor::scalar(0i64));
    let one = b.init("one", kiln_tensor::Tensor::scalar(1i64));
    let g0 = b.op("b", "Gather", &[sh, zero], vec![]);
    let g1 = b.op("s", "Gather", &[sh, one], vec![]);
    let ax = b.i64s("ax", &[0]);
    let u0 = b.op("b1", "Unsqueeze", &[g0, ax], vec![]);
    let u1 = b.op("s1", "Unsqueeze", &[g1, ax], vec![]);
    let tail = b.i64s("tail", &[12, 32]);
    let target = b.op("target", "Concat", &[u0, u1, tail], vec![("axis", int(0))]);
    let r4 = b.op("split_heads", "Reshape", &[x, target], vec![]);
    let t = b.op("t", "Transpose", &[r4], vec![("perm", ints(&[0, 2, 3, 1]))]);
    for v in [r1, r2, r3, t] {
        b.output(v);
    }
    insta::assert_snapshot!(infer(&b.model()), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[batch,seq,384]
      init %keep = i64[4] [0, 0, 12, -1]
      init %flat = i64[2] [-1, 384]
      init %odd = i64[3] [-1, 4, 2]
      init %zero = i64[] [0]
      init %one = i64[] [1]
      init %ax = i64[1] [0]
      init %tail = i64[2] [12, 32]
      %heads: ?[?] = Reshape(%x, %keep)
      %rows: ?[?] = Reshape(%x, %flat)
      %odd: ?[?] = Reshape(%x, %odd)
      %shape: ?[?] = Shape(%x)
      %b: ?[?] = Gather(%shape, %zero)
      %s: ?[?] = Gather(%shape, %one)
      %b1: ?[?] = Unsqueeze(%b, %ax)
      %s1: ?[?] = Unsqueeze(%s, %ax)
      %target: ?[?] = Concat(%b1, %s1, %tail) {axis=0}
      %split_heads: ?[?] = Reshape(%x, %target)
      %t: ?[?] = Transpose(%split_heads) {perm=[0,2,3,1]}
      output %heads: ?[?], %rows: ?[?], %odd: ?[?], %t: ?[?]
    }
    --- infer-shapes --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[batch,seq,384]
      init %keep = i64[4] [0, 0, 12, -1]
      init %flat = i64[2] [-1, 384]
      init %odd = i64[3] [-1, 4, 2]
      init %zero = i64[] [0]
      init %one = i64[] [1]
      init %ax = i64[1] [0]
      init %tail = i64[2] [12, 32]
      %heads: f32[batch,seq,12,32] = Reshape(%x, %keep)
      %rows: f32[unk_0,384] = Reshape(%x, %flat)
      %odd: f32[unk_1,4,2] = Reshape(%x, %odd)
      %shape: i64[3] = Shape(%x)
      %b: i64[] = Gather(%shape, %zero)
      %s: i64[] = Gather(%shape, %one)
      %b1: i64[1] = Unsqueeze(%b, %ax)
      %s1: i64[1] = Unsqueeze(%s, %ax)
      %target: i64[4] = Concat(%b1, %s1, %tail) {axis=0}
      %split_heads: f32[batch,seq,12,32] = Reshape(%x, %target)
      %t: f32[batch,12,32,seq] = Transpose(%split_heads) {perm=[0,2,3,1]}
      output %heads: f32[batch,seq,12,32], %rows: f32[unk_0,384], %odd: f32[unk_1,4,2], %t: f32[batch,12,32,seq]
    }
    "#);
}

#[test]
fn layout_ops() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,6,4]");
    let y = b.input("y", "f32[N,2,4]");
    let cat = b.op("cat", "Concat", &[x, y], vec![("axis", int(1))]);
    let sizes = b.i64s("sizes", &[3, 5]);
    let parts = b.op_n(&["p0", "p1"], "Split", &[cat, sizes], vec![("axis", int(1))]);
    let starts = b.i64s("starts", &[1]);
    let ends = b.i64s("ends", &[i64::MAX]);
    let axes = b.i64s("axes", &[2]);
    let sl = b.op("sl", "Slice", &[parts[1], starts, ends, axes], vec![]);
    let ax0 = b.i64s("ax0", &[0]);
    let un = b.op("un", "Unsqueeze", &[sl, ax0], vec![]);
    let sq = b.op("sq", "Squeeze", &[un, ax0], vec![]);
    let cast = b.op("cast", "Cast", &[sq], vec![("to", int(7))]);
    let red = b.op("red", "ReduceMean", &[x], vec![("axes", ints(&[-1])), ("keepdims", int(0))]);
    let sm = b.op("sm", "Softmax", &[x], vec![("axis", int(-1))]);
    let gamma = b.rand("gamma", &[4], 1);
    let ln = b.op("ln", "LayerNormalization", &[sm, gamma], vec![]);
    let cond = b.input("cond", "bool[1,4]");
    let wh = b.op("wh", "Where", &[cond, ln, x], vec![]);
    let shape = b.op("shape", "Shape", &[wh], vec![]);
    let e = b.i64s("to", &[2, 1, 1, 1]);
    let ex = b.op("ex", "Expand", &[x, e], vec![]);
    for v in [parts[0], cast, red, shape, ex] {
        b.output(v);
    }
    insta::assert_snapshot!(infer(&b.model()), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,6,4]
      input %y: f32[N,2,4]
      input %cond: bool[1,4]
      init %sizes = i64[2] [3, 5]
      init %starts = i64[1] [1]
      init %ends = i64[1] [9223372036854776000]
      init %axes = i64[1] [2]
      init %ax0 = i64[1] [0]
      init %gamma = f32[4] [0.04092049598693848, -0.8525375127792358, 0.49050819873809814, 0.4352734088897705]
      init %to = i64[4] [2, 1, 1, 1]
      %cat: ?[?] = Concat(%x, %y) {axis=1}
      %p0: ?[?], %p1: ?[?] = Split(%cat, %sizes) {axis=1}
      %sl: ?[?] = Slice(%p1, %starts, %ends, %axes)
      %un: ?[?] = Unsqueeze(%sl, %ax0)
      %sq: ?[?] = Squeeze(%un, %ax0)
      %cast: ?[?] = Cast(%sq) {to=7}
      %red: ?[?] = ReduceMean(%x) {axes=[-1], keepdims=0}
      %sm: ?[?] = Softmax(%x) {axis=-1}
      %ln: ?[?] = LayerNormalization(%sm, %gamma)
      %wh: ?[?] = Where(%cond, %ln, %x)
      %shape: ?[?] = Shape(%wh)
      %ex: ?[?] = Expand(%x, %to)
      output %p0: ?[?], %cast: ?[?], %red: ?[?], %shape: ?[?], %ex: ?[?]
    }
    --- infer-shapes --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,6,4]
      input %y: f32[N,2,4]
      input %cond: bool[1,4]
      init %sizes = i64[2] [3, 5]
      init %starts = i64[1] [1]
      init %ends = i64[1] [9223372036854776000]
      init %axes = i64[1] [2]
      init %ax0 = i64[1] [0]
      init %gamma = f32[4] [0.04092049598693848, -0.8525375127792358, 0.49050819873809814, 0.4352734088897705]
      init %to = i64[4] [2, 1, 1, 1]
      %cat: f32[N,8,4] = Concat(%x, %y) {axis=1}
      %p0: f32[N,3,4], %p1: f32[N,5,4] = Split(%cat, %sizes) {axis=1}
      %sl: f32[N,5,3] = Slice(%p1, %starts, %ends, %axes)
      %un: f32[1,N,5,3] = Unsqueeze(%sl, %ax0)
      %sq: f32[N,5,3] = Squeeze(%un, %ax0)
      %cast: i64[N,5,3] = Cast(%sq) {to=7}
      %red: f32[N,6] = ReduceMean(%x) {axes=[-1], keepdims=0}
      %sm: f32[N,6,4] = Softmax(%x) {axis=-1}
      %ln: f32[N,6,4] = LayerNormalization(%sm, %gamma)
      %wh: f32[N,6,4] = Where(%cond, %ln, %x)
      %shape: i64[3] = Shape(%wh)
      %ex: f32[2,N,6,4] = Expand(%x, %to)
      output %p0: f32[N,3,4], %cast: i64[N,5,3], %red: f32[N,6], %shape: i64[3], %ex: f32[2,N,6,4]
    }
    "#);
}

#[test]
fn kiln_ops() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,3,16,16]");
    let w = b.rand("w", &[8, 3, 3, 3], 1);
    let c =
        b.node(&["conv"], "kiln", "FusedConv", vec![Some(x), Some(w)], vec![("pads", ints(&[1, 1, 1, 1])), ("activation", string("relu"))])
            [0];
    let a = b.input("a", "f32[N,S,8]");
    let wm = b.rand("wm", &[8, 4], 2);
    let bias = b.rand("bias", &[4], 3);
    let mm = b.node(&["mm"], "kiln", "FusedMatMul", vec![Some(a), Some(wm), Some(bias)], vec![])[0];
    let q = b.input("q", "f32[N,2,S,4]");
    let k = b.input("k", "f32[N,2,T,4]");
    let v = b.input("v", "f32[N,2,T,6]");
    let at = b.node(&["att"], "kiln", "Attention", vec![Some(q), Some(k), Some(v), None], vec![])[0];
    for o in [c, mm, at] {
        b.output(o);
    }
    insta::assert_snapshot!(infer(&b.model()), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,3,16,16]
      input %a: f32[N,S,8]
      input %q: f32[N,2,S,4]
      input %k: f32[N,2,T,4]
      input %v: f32[N,2,T,6]
      init %w = f32[8,3,3,3] <216 values>
      init %wm = f32[8,4] <32 values>
      init %bias = f32[4] [-0.5790774822235107, 0.7782973051071167, 0.6626524925231934, 0.36186206340789795]
      %conv: ?[?] = kiln::FusedConv(%x, %w) {activation="relu", pads=[1,1,1,1]}
      %mm: ?[?] = kiln::FusedMatMul(%a, %wm, %bias)
      %att: ?[?] = kiln::Attention(%q, %k, %v, _)
      output %conv: ?[?], %mm: ?[?], %att: ?[?]
    }
    --- infer-shapes --->
    model ir_version=8 opsets=[ai.onnx=17, kiln=1]
    graph "g" {
      input %x: f32[N,3,16,16]
      input %a: f32[N,S,8]
      input %q: f32[N,2,S,4]
      input %k: f32[N,2,T,4]
      input %v: f32[N,2,T,6]
      init %w = f32[8,3,3,3] <216 values>
      init %wm = f32[8,4] <32 values>
      init %bias = f32[4] [-0.5790774822235107, 0.7782973051071167, 0.6626524925231934, 0.36186206340789795]
      %conv: f32[N,8,16,16] = kiln::FusedConv(%x, %w) {activation="relu", pads=[1,1,1,1]}
      %mm: f32[N,S,4] = kiln::FusedMatMul(%a, %wm, %bias)
      %att: f32[N,2,S,6] = kiln::Attention(%q, %k, %v, _)
      output %conv: f32[N,8,16,16], %mm: f32[N,S,4], %att: f32[N,2,S,6]
    }
    "#);
}

#[test]
fn derived_facts_never_contradict_declared_ones() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,8]");
    let w = b.rand("w", &[8, 4], 1);
    let mm = b.op("mm", "MatMul", &[x, w], vec![]);
    b.declare(mm, "f32[N,5]");
    b.output(mm);
    let err = InferShapes::default().run(&b.model().graph).err().map(|e| e.to_string());
    insta::assert_snapshot!(err.unwrap_or_default(), @"node 'MatMul' (MatMul): output 'mm': derived shape [N,4] contradicts the declared [N,5]");

    // A declared symbol is refined by a derived known dim; a declared known dim stays.
    let mut b = B::new();
    let x = b.input("x", "f32[N,8]");
    let w = b.rand("w", &[8, 4], 1);
    let mm = b.op("mm", "MatMul", &[x, w], vec![]);
    b.declare(mm, "f32[rows,cols]");
    b.output(mm);
    insta::assert_snapshot!(infer(&b.model()), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,8]
      init %w = f32[8,4] <32 values>
      %mm: f32[rows,cols] = MatMul(%x, %w)
      output %mm: f32[rows,cols]
    }
    --- infer-shapes --->
    model ir_version=8 opsets=[ai.onnx=17]
    graph "g" {
      input %x: f32[N,8]
      init %w = f32[8,4] <32 values>
      %mm: f32[rows,4] = MatMul(%x, %w)
      output %mm: f32[rows,4]
    }
    "#);
}

#[test]
fn a_second_run_has_nothing_to_add() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,12,8]");
    let t = b.i64s("t", &[-1, 4, 2]);
    let r = b.op("r", "Reshape", &[x, t], vec![]);
    b.output(r);
    let mut m = b.model();
    kiln_passes::optimize(&mut m, &[Box::new(InferShapes::default())]).expect("infer");
    assert!(InferShapes::default().run(&m.graph).expect("infer").is_none());
}

#[test]
fn resize_conv_transpose_and_pad_sizes() {
    let mut b = B::new();
    let x = b.input("x", "f32[1,8,20,30]");
    let roi = b.f32s("roi", &[0], &[]);
    let scales = b.f32s("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    let up = b.op("up", "Resize", &[x, roi, scales], vec![("mode", string("nearest"))]);
    let sizes = b.i64s("sizes", &[1, 8, 7, 9]);
    let down = b.node(&["down"], "", "Resize", vec![Some(x), None, None, Some(sizes)], vec![])[0];
    let w = b.rand("w", &[8, 4, 2, 2], 1);
    let ct = b.op("ct", "ConvTranspose", &[x, w], vec![("strides", ints(&[2, 2])), ("group", int(2))]);
    let pads = b.i64s("pads", &[0, 0, 1, 2, 0, 0, 3, 4]);
    let padded = b.op("padded", "Pad", &[x, pads], vec![]);
    let img = b.input("img", "f32[1,8,H,W]");
    let sym = b.op("sym", "Resize", &[img, roi, scales], vec![]);
    for v in [up, down, ct, padded, sym] {
        b.output(v);
    }
    let out = infer(&b.model());
    let after = out.split("--- infer-shapes --->").nth(1).expect("an after part");
    for want in [
        "%up: f32[1,8,40,60]",
        "%down: f32[1,8,7,9]",
        "%ct: f32[1,8,40,60]",
        "%padded: f32[1,8,24,36]",
        "%sym: f32[1,8,unk_0,unk_1]",
    ] {
        assert!(after.contains(want), "{want} missing in\n{after}");
    }
}
