//! Weight-only rewrite on small graphs: IR snapshots per format, outputs exactly `X @
//! dequantized W` on the reference executor, ONNX export/import round trip (int4 packing),
//! onnxruntime on the exports, opset raising, and the Hessian collector's memory.
#![allow(clippy::unwrap_used)]

mod common;

use common::{B, Rng, max_diff, run};
use kiln_ir::{Attr, Model, dump};
use kiln_quant::{
    HessianCollector, Rounding, WeightFormat, WeightOnlyOptions, plan_weight_only, quantize_weight_only, with_observed_outputs,
};
use kiln_tensor::{DType, Tensor};

/// x[N,8] -> MatMul(w1[8,6]) -> Relu -> Gemm(w2[4,6], C=b2, transB=1, alpha=0.5, beta=2);
/// x also feeds MatMul(w3[8,4]); their sum is the output. K = 6 for w2 (a partial group of 4).
fn mlp() -> Model {
    let mut b = B::new(1);
    let x = b.input("x", &["N", "8"]);
    let w1 = b.weight("w1", &[8, 6], 1.0);
    let w2 = b.weight("w2", &[4, 6], 1.0);
    let b2 = b.weight("b2", &[4], 0.1);
    let w3 = b.weight("w3", &[8, 4], 0.5);
    let h = b.op("h", "MatMul", &[x, w1], vec![]);
    let r = b.op("r", "Relu", &[h], vec![]);
    let attrs = vec![("transB", Attr::Int(1)), ("alpha", Attr::Float(0.5)), ("beta", Attr::Float(2.0))];
    let y = b.op("y", "Gemm", &[r, w2, b2], attrs);
    let skip = b.op("skip", "MatMul", &[x, w3], vec![]);
    let out = b.op("out", "Add", &[y, skip], vec![]);
    b.output(out, &["N", "4"]);
    b.model()
}

fn int(format: WeightFormat, group_size: usize, symmetric: bool) -> WeightOnlyOptions {
    WeightOnlyOptions { format, group_size, symmetric, ..WeightOnlyOptions::default() }
}

/// The formats the tests go through, with a snapshot name each.
fn formats() -> Vec<(&'static str, WeightOnlyOptions)> {
    vec![
        ("f16", WeightOnlyOptions { format: WeightFormat::F16, ..WeightOnlyOptions::default() }),
        ("bf16_compute", WeightOnlyOptions { format: WeightFormat::BF16, compute_bf16: true, ..WeightOnlyOptions::default() }),
        ("int4_g4", int(WeightFormat::Int4, 4, false)),
        ("int4_g4_symmetric", int(WeightFormat::Int4, 4, true)),
        ("int8_per_column", int(WeightFormat::Int8, 0, false)),
    ]
}

fn feeds(seed: u64, rows: usize) -> Vec<(&'static str, Tensor)> {
    vec![("x", Tensor::from_vec(vec![rows, 8], Rng::new(seed).vec(rows * 8, 1.0)).unwrap())]
}

#[test]
fn snapshots_per_format() {
    for (name, opts) in formats() {
        let (q, summary) = quantize_weight_only(mlp(), &opts, None).unwrap();
        insta::assert_snapshot!(format!("{name}_ir"), dump(&q));
        insta::assert_snapshot!(format!("{name}_summary"), summary.to_string());
        let json = serde_json::to_string(&summary).unwrap();
        assert_eq!(serde_json::from_str::<kiln_quant::WeightOnlySummary>(&json).unwrap(), summary);
        assert_eq!(q.metadata[kiln_quant::WEIGHT_ONLY_METADATA_KEY], summary.headline());
    }
}

/// Independent dequantization of one weight node (Cast of an f16/bf16 initializer, or a
/// DequantizeLinear of initializers): `(q - zp) * scale` per element, in f32.
fn dequantize(model: &Model, node: &kiln_ir::Node) -> Tensor {
    let g = &model.graph;
    let init = |i: usize| node.inputs.get(i).copied().flatten().map(|v| &g.initializers[&v]);
    let q = init(0).unwrap();
    if node.op_type == "Cast" {
        return q.cast(DType::F32).unwrap();
    }
    let (k, n) = (q.shape()[0], q.shape()[1]);
    let qv = q.to_f64_vec().unwrap();
    let s = init(1).unwrap().as_slice::<f32>().unwrap().to_vec();
    let zp = init(2).map_or(vec![0.0; s.len()], |z| z.to_f64_vec().unwrap());
    let block = node.attr_int("block_size").unwrap_or(0) as usize;
    let param = |r: usize, c: usize| r.checked_div(block).map_or(c, |gi| gi * n + c);
    let w: Vec<f32> = (0..k * n).map(|i| (qv[i] - zp[param(i / n, i % n)]) as f32 * s[param(i / n, i % n)]).collect();
    Tensor::from_vec(vec![k, n], w).unwrap()
}

/// The rewritten model with every weight Cast / DequantizeLinear replaced by its result, as
/// an f32 initializer: what `X @ dequantized W` means.
fn with_dequantized_weights(q: &Model) -> Model {
    let mut m = q.clone();
    let g = &q.graph;
    let is_weight = |n: &kiln_ir::Node| {
        matches!(n.op_type.as_str(), "Cast" | "DequantizeLinear") && n.inputs[0].is_some_and(|v| g.initializers.contains_key(&v))
    };
    for n in g.nodes.iter().filter(|n| is_weight(n)) {
        let out = n.outputs[0].unwrap();
        m.graph.initializers.insert(out, dequantize(q, n));
    }
    m.graph.nodes.retain(|n| !is_weight(n));
    kiln_ir::verify(&m).unwrap();
    m
}

#[test]
fn outputs_are_exactly_x_times_dequantized_w() {
    let model = mlp();
    let x = feeds(7, 5);
    let want = run(&model, &x)["out"].clone();
    for (name, opts) in formats() {
        let (q, _) = quantize_weight_only(model.clone(), &opts, None).unwrap();
        let got = run(&q, &x)["out"].clone();
        let exact = run(&with_dequantized_weights(&q), &x)["out"].clone();
        assert_eq!(got, exact, "{name}: not bit-exact with X @ dequantized W");
        let (d, scale) = max_diff(&got, &want);
        eprintln!("{name}: max |diff| vs f32 {d} (max |y| {scale})");
        assert!(d <= 0.15 * scale, "{name}: max |diff| {d} vs max |y| {scale}");
    }
}

#[test]
fn onnx_round_trip_keeps_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let x = feeds(8, 3);
    for (name, opts) in formats() {
        let (q, _) = quantize_weight_only(mlp(), &opts, None).unwrap();
        let path = dir.path().join(format!("{name}.onnx"));
        kiln_onnx::export(&q, &path, &kiln_onnx::ExportOptions::default()).unwrap();
        let back = kiln_onnx::load(&path, &kiln_reference::op_set()).unwrap();
        assert_eq!(dump(&back), dump(&q), "{name}");
        assert_eq!(run(&back, &x), run(&q, &x), "{name}");
    }
}

#[test]
fn exports_run_in_onnxruntime() {
    let x = feeds(9, 4);
    for (name, opts) in formats() {
        let (q, _) = quantize_weight_only(mlp(), &opts, None).unwrap();
        let Some(ort) = common::ort_run(&q, &x) else { return };
        let (d, scale) = max_diff(&ort["out"], &run(&q, &x)["out"]);
        eprintln!("{name}: onnxruntime vs reference max |diff| {d}");
        assert!(d <= 1e-5 * scale.max(1.0), "{name}: onnxruntime and the reference differ by {d}");
    }
}

#[test]
fn selection_and_exclusions() {
    let opts = WeightOnlyOptions { exclude_nodes: vec!["skip".into()], ..WeightOnlyOptions::default() };
    let obs = plan_weight_only(&mlp(), &opts);
    assert_eq!(obs.values, ["x", "r"]);
    let (_, summary) = quantize_weight_only(mlp(), &opts, None).unwrap();
    let names: Vec<&str> = summary.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["h", "y"]);
    assert_eq!(summary.excluded[0].reason, "excluded by name");
    // A Conv is listed as out of scope.
    let mut b = B::new(4);
    let x = b.input("x", &["1", "2", "4", "4"]);
    let w = b.weight("cw", &[3, 2, 1, 1], 1.0);
    let c = b.op("c", "Conv", &[x, w], vec![]);
    b.output(c, &["1", "3", "4", "4"]);
    let obs = plan_weight_only(&b.model(), &WeightOnlyOptions::default());
    assert!(obs.values.is_empty() && obs.excluded[0].reason.contains("out of scope"), "{obs:?}");
}

#[test]
fn gptq_without_hessians_is_an_error_naming_the_value() {
    let opts = WeightOnlyOptions { method: Rounding::Gptq, ..WeightOnlyOptions::default() };
    let err = quantize_weight_only(mlp(), &opts, None).unwrap_err().to_string();
    assert!(err.contains("'x'") && err.contains("'h'"), "{err}");
}

/// Opset 11 with ReduceMean's `axes` attribute: raised to 21 with `axes` as an input; a
/// Softmax at 11 is refused, naming it.
#[test]
fn old_opsets_are_raised_to_21_or_refused() {
    let mut b = B::new(5);
    let x = b.input("x", &["2", "8"]);
    let w = b.weight("w", &[8, 4], 1.0);
    let h = b.op("h", "MatMul", &[x, w], vec![]);
    let m = b.op("m", "ReduceMean", &[h], vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))]);
    let s = b.op("s", "Sub", &[h, m], vec![]);
    b.output(s, &["2", "4"]);
    let mut model = b.model();
    model.opsets.insert(String::new(), 11);
    model.graph.nodes.iter_mut().for_each(|n| n.opset = 11);
    let x = feeds(3, 2);
    let (q, summary) = quantize_weight_only(model.clone(), &WeightOnlyOptions::default(), None).unwrap();
    assert_eq!((summary.opset_from, summary.opset_to, q.opsets[""], q.ir_version), (11, 21, 21, 10));
    let reduce = q.graph.nodes.iter().find(|n| n.op_type == "ReduceMean").unwrap();
    assert!(reduce.attr("axes").is_none() && reduce.inputs.len() == 2 && reduce.opset == 21);
    let exact = run(&with_dequantized_weights(&q), &x)["s"].clone();
    assert_eq!(run(&q, &x)["s"], exact);
    if let Some(ort) = common::ort_run(&q, &x) {
        let (d, scale) = max_diff(&ort["s"], &exact);
        assert!(d <= 1e-5 * scale.max(1.0), "onnxruntime differs by {d}");
    }
    // f16 needs opset 13 only.
    let f16 = WeightOnlyOptions { format: WeightFormat::F16, ..WeightOnlyOptions::default() };
    let (q, _) = quantize_weight_only(model.clone(), &f16, None).unwrap();
    assert_eq!((q.opsets[""], q.ir_version), (13, 8));
    model.graph.nodes[1].op_type = "Softmax".into();
    model.graph.nodes[1].attrs.clear();
    let err = quantize_weight_only(model, &WeightOnlyOptions::default(), None).unwrap_err().to_string();
    assert!(err.contains("'m' (Softmax)") && err.contains("opset 21"), "{err}");
}

#[test]
fn hessian_memory_does_not_grow_with_samples() {
    let model = mlp();
    let opts = WeightOnlyOptions { method: Rounding::Gptq, ..WeightOnlyOptions::default() };
    let obs = plan_weight_only(&model, &opts);
    let observed = with_observed_outputs(&model, &obs);
    let mut rng = Rng::new(11);
    let mut memory = Vec::new();
    for samples in [10, 1000] {
        let mut col = HessianCollector::new(&obs, &model);
        for _ in 0..samples {
            let x = vec![("x", Tensor::from_vec(vec![2, 8], rng.vec(16, 1.0)).unwrap())];
            let outs = run(&observed, &x);
            col.observe_outputs(outs.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
        }
        memory.push(col.memory_bytes());
        let hs = col.finish().unwrap();
        assert_eq!((hs.samples, hs.values["x"].rows, hs.values["r"].dim), (samples, 2 * samples, 6));
    }
    assert_eq!(memory[0], memory[1]);
}

/// Opset 11 Unsqueeze (axes attribute), Split (equal parts, no sizes) and ReduceSum (axes
/// attribute) raised to 21: axes as inputs, `num_outputs` written; same outputs, onnxruntime too.
#[test]
fn attributes_that_became_inputs_are_rewritten() {
    let mut b = B::new(6);
    let x = b.input("x", &["2", "8"]);
    let w = b.weight("w", &[8, 4], 1.0);
    let h = b.op("h", "MatMul", &[x, w], vec![]);
    let u = b.op("u", "Unsqueeze", &[h], vec![("axes", Attr::Ints(vec![0]))]);
    let s = b.op("s", "Split", &[u], vec![("axis", Attr::Int(2))]);
    let s2 = b.g.add_value("s2", None, None);
    b.g.nodes.last_mut().unwrap().outputs.push(Some(s2));
    let r = b.op("r", "ReduceSum", &[s], vec![("axes", Attr::Ints(vec![0, 2])), ("keepdims", Attr::Int(0))]);
    let out = b.op("out", "Sub", &[r, s2], vec![]);
    b.output(out, &["1", "2", "2"]);
    let mut model = b.model();
    model.opsets.insert(String::new(), 11);
    model.graph.nodes.iter_mut().for_each(|n| n.opset = 11);
    let x = feeds(4, 2);
    let want = run(&model, &x)["out"].clone();
    let f16 = WeightOnlyOptions { format: WeightFormat::F16, ..WeightOnlyOptions::default() };
    for opts in [WeightOnlyOptions::default(), f16] {
        let (q, _) = quantize_weight_only(model.clone(), &opts, None).unwrap();
        let node = |op: &str| q.graph.nodes.iter().find(|n| n.op_type == op).unwrap();
        assert!(node("Unsqueeze").attr("axes").is_none() && node("Unsqueeze").inputs.len() == 2);
        assert!(node("ReduceSum").attr("axes").is_none() && node("ReduceSum").inputs.len() == 2);
        let got = run(&q, &x)["out"].clone();
        assert_eq!(got, run(&with_dequantized_weights(&q), &x)["out"]);
        let (d, scale) = max_diff(&got, &want);
        assert!(d <= 0.2 * scale, "{d} vs {scale}");
        if q.opsets[""] == 21 {
            assert_eq!(node("Split").attr_int("num_outputs"), Some(2));
        }
        if let Some(ort) = common::ort_run(&q, &x) {
            let (d, scale) = max_diff(&ort["out"], &got);
            assert!(d <= 1e-5 * scale.max(1.0), "onnxruntime differs by {d}");
        }
    }
}
