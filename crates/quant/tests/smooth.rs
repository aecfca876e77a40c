//! SmoothQuant on small graphs: plans and IR snapshots (LayerNormalization -> Q/K/V, a
//! decomposed LayerNorm, a MatMul + Add producer, unfoldable groups), the collector's memory,
//! and the smoothed graphs computing the same function as the originals.
#![allow(clippy::unwrap_used)]

mod common;

use common::{B, Rng, max_diff, run};
use kiln_ir::{Attr, Model, dump};
use kiln_quant::smooth::{ChannelMaxCollector, ChannelStats, Fold, SmoothOptions, plan_smoothing, smooth};
use kiln_quant::with_observed_outputs;
use kiln_tensor::Tensor;

const K: usize = 8;

/// x[N,8] -> LayerNormalization(scale, bias) -> three MatMuls (W[8,4]) -> outputs q, k, v.
fn ln_qkv() -> Model {
    let mut b = B::new(11);
    let x = b.input("x", &["N", "8"]);
    let scale = b.weight("ln.scale", &[K], 1.0);
    let bias = b.weight("ln.bias", &[K], 0.2);
    let ln = b.op("ln", "LayerNormalization", &[x, scale, bias], vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(1e-5))]);
    for name in ["q", "k", "v"] {
        let w = b.weight(&format!("{name}.w"), &[K, 4], 1.0);
        let y = b.op(name, "MatMul", &[ln, w], vec![]);
        b.output(y, &["N", "4"]);
    }
    b.model()
}

/// The LayerNorm of ln_qkv spelt out: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div,
/// Mul(gamma [1, 8]), Add(beta scalar), read by a MatMul and a Gemm (transB).
fn decomposed_ln() -> Model {
    let mut b = B::new(12);
    let x = b.input("x", &["N", "8"]);
    let axes = vec![("axes", Attr::Ints(vec![-1]))];
    let mean = b.op("mean", "ReduceMean", &[x], axes.clone());
    let d = b.op("d", "Sub", &[x, mean], vec![]);
    let two = b.g.add_value("two", Some(kiln_tensor::DType::F32), None);
    b.g.initializers.insert(two, Tensor::scalar(2.0f32));
    let sq = b.op("sq", "Pow", &[d, two], vec![]);
    let var = b.op("var", "ReduceMean", &[sq], axes);
    let eps = b.g.add_value("eps", Some(kiln_tensor::DType::F32), None);
    b.g.initializers.insert(eps, Tensor::scalar(1e-5f32));
    let ve = b.op("ve", "Add", &[var, eps], vec![]);
    let sd = b.op("sd", "Sqrt", &[ve], vec![]);
    let y = b.op("y", "Div", &[d, sd], vec![]);
    let gamma = b.weight("gamma", &[1, K], 1.0);
    let beta = b.g.add_value("beta", Some(kiln_tensor::DType::F32), None);
    b.g.initializers.insert(beta, Tensor::scalar(0.25f32));
    let yg = b.op("yg", "Mul", &[y, gamma], vec![]);
    let ln = b.op("ln", "Add", &[beta, yg], vec![]);
    let w1 = b.weight("fc.w", &[K, 4], 1.0);
    let w2 = b.weight("g.w", &[3, K], 1.0);
    let a = b.op("fc", "MatMul", &[ln, w1], vec![]);
    let c = b.op("g", "Gemm", &[ln, w2], vec![("transB", Attr::Int(1))]);
    b.output(a, &["N", "4"]);
    b.output(c, &["N", "3"]);
    b.model()
}

/// z[N,6] -> MatMul(w1[6,8]) -> Add(b1) -> h -> MatMul(w2[8,4]) and Gemm(w3[8,4], C); w2 is
/// also read by a MatMul of another activation (`u`, a graph input: not smoothed), so it must
/// be copied, not changed.
fn linear_producer() -> Model {
    let mut b = B::new(13);
    let z = b.input("z", &["N", "6"]);
    let u = b.input("u", &["N", "8"]);
    let w1 = b.weight("w1", &[6, K], 1.0);
    let b1 = b.weight("b1", &[K], 0.5);
    let w2 = b.weight("w2", &[K, 4], 1.0);
    let w3 = b.weight("w3", &[K, 4], 1.0);
    let c3 = b.weight("c3", &[4], 0.1);
    let h0 = b.op("h0", "MatMul", &[z, w1], vec![]);
    let h = b.op("h", "Add", &[h0, b1], vec![]);
    let y = b.op("y", "MatMul", &[h, w2], vec![]);
    let g = b.op("gm", "Gemm", &[h, w3, c3], vec![]);
    let o = b.op("other", "MatMul", &[u, w2], vec![]);
    for v in [y, g, o] {
        b.output(v, &["N", "4"]);
    }
    b.model()
}

/// Unfoldable: a Relu output feeding fc2, and a LayerNorm output also read by a residual Add.
fn unfoldable() -> Model {
    let mut b = B::new(14);
    let x = b.input("x", &["N", "8"]);
    let w1 = b.weight("fc1.w", &[K, K], 1.0);
    let w2 = b.weight("fc2.w", &[K, 4], 1.0);
    let scale = b.weight("ln.scale", &[K], 1.0);
    let h = b.op("fc1", "MatMul", &[x, w1], vec![]);
    let r = b.op("act", "Relu", &[h], vec![]);
    let y = b.op("fc2", "MatMul", &[r, w2], vec![]);
    let ln = b.op("ln", "LayerNormalization", &[x, scale], vec![("axis", Attr::Int(-1))]);
    let w3 = b.weight("proj.w", &[K, K], 1.0);
    let p = b.op("proj", "MatMul", &[ln, w3], vec![]);
    let res = b.op("res", "Add", &[p, ln], vec![]);
    b.output(y, &["N", "4"]);
    b.output(res, &["N", "8"]);
    b.model()
}

/// Fixed channel maxima: channel 2 and 5 are outliers.
fn stats(model: &Model, opts: &SmoothOptions) -> ChannelStats {
    let plan = plan_smoothing(model, opts);
    let maxima = [1.0, 0.5, 60.0, 2.0, 1.0, 20.0, 0.0, 1.5];
    ChannelStats { samples: 4, values: plan.groups.iter().map(|g| (g.activation.clone(), maxima.to_vec())).collect() }
}

fn snapshot(name: &str, model: &Model, opts: &SmoothOptions) {
    let plan = plan_smoothing(model, opts);
    let (smoothed, summary) = smooth(model.clone(), &plan, &stats(model, opts), opts).unwrap();
    insta::assert_snapshot!(format!("{name}_ir"), dump(&smoothed));
    insta::assert_snapshot!(format!("{name}_summary"), summary.to_string());
}

#[test]
fn layernorm_qkv_snapshot() {
    let model = ln_qkv();
    let plan = plan_smoothing(&model, &SmoothOptions::default());
    assert_eq!(plan.groups.len(), 1);
    assert_eq!(plan.groups[0].consumers, ["q", "k", "v"]);
    assert_eq!(plan.groups[0].fold, Fold::LayerNorm { node: "ln".into() });
    assert_eq!(plan.observation().values, ["ln"]);
    snapshot("layernorm_qkv", &model, &SmoothOptions::default());
}

#[test]
fn decomposed_layernorm_snapshot() {
    let model = decomposed_ln();
    let plan = plan_smoothing(&model, &SmoothOptions::default());
    assert_eq!(plan.groups.len(), 1, "{:?}", plan.skipped);
    assert_eq!(plan.groups[0].fold, Fold::Affine { mul: "yg".into(), add: Some("ln".into()) });
    snapshot("decomposed_layernorm", &model, &SmoothOptions::default());
}

#[test]
fn linear_producer_snapshot() {
    let model = linear_producer();
    let plan = plan_smoothing(&model, &SmoothOptions::default());
    assert_eq!(plan.groups.len(), 1, "{:?}", plan.skipped);
    assert_eq!(plan.groups[0].fold, Fold::Linear { node: "h0".into(), bias: Some("h".into()) });
    let skipped: Vec<&str> = plan.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["h0", "other"]);
    snapshot("linear_producer", &model, &SmoothOptions::default());
}

#[test]
fn unfoldable_groups_are_skipped_with_reasons() {
    let model = unfoldable();
    let plan = plan_smoothing(&model, &SmoothOptions::default());
    assert!(plan.groups.is_empty(), "{:?}", plan.groups);
    let reasons: Vec<(&str, &str)> = plan.skipped.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();
    assert_eq!(
        reasons,
        [
            ("fc1", "'x' is also read by ln (LayerNormalization)"),
            ("fc2", "'act' comes from act (Relu), which cannot absorb 1/s"),
            ("proj", "'ln' is also read by res (Add)"),
        ]
    );
    snapshot("unfoldable", &model, &SmoothOptions::default());
    // insert_mul smooths them all with an explicit Mul.
    let opts = SmoothOptions { insert_mul: true, ..SmoothOptions::default() };
    let plan = plan_smoothing(&model, &opts);
    assert_eq!(plan.groups.len(), 3);
    assert!(plan.groups.iter().all(|g| matches!(g.fold, Fold::InsertMul { .. })));
    snapshot("unfoldable_insert_mul", &model, &opts);
}

#[test]
fn exclusions_and_bad_inputs() {
    let model = ln_qkv();
    let opts = SmoothOptions { exclude_nodes: vec!["k".into()], ..SmoothOptions::default() };
    let plan = plan_smoothing(&model, &opts);
    assert!(plan.groups.is_empty());
    let reasons: Vec<&str> = plan.skipped.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons, ["excluded by name", "'ln' is also read by k (MatMul)", "'ln' is also read by k (MatMul)"]);
    let opts = SmoothOptions::default();
    let plan = plan_smoothing(&model, &opts);
    let err = smooth(model.clone(), &plan, &ChannelStats { samples: 1, values: Default::default() }, &opts).unwrap_err();
    assert!(err.to_string().contains("'ln'"), "{err}");
    let bad = SmoothOptions { alpha: 1.5, ..SmoothOptions::default() };
    assert!(smooth(model.clone(), &plan, &stats(&model, &opts), &bad).unwrap_err().to_string().contains("alpha"));
    let mut short = stats(&model, &opts);
    short.values.values_mut().for_each(|v| v.truncate(3));
    assert!(smooth(model, &plan, &short, &opts).unwrap_err().to_string().contains("3 channels"));
}

#[test]
fn options_and_summary_serialise() {
    let o: SmoothOptions = serde_json::from_str(r#"{"alpha": 0.7}"#).unwrap();
    assert_eq!(o, SmoothOptions { alpha: 0.7, ..SmoothOptions::default() });
    let model = ln_qkv();
    let opts = SmoothOptions::default();
    let plan = plan_smoothing(&model, &opts);
    let (smoothed, summary) = smooth(model.clone(), &plan, &stats(&model, &opts), &opts).unwrap();
    let back: kiln_quant::SmoothSummary = serde_json::from_str(&serde_json::to_string(&summary).unwrap()).unwrap();
    assert_eq!(back, summary);
    assert_eq!(smoothed.metadata[kiln_quant::smooth::SMOOTH_METADATA_KEY], summary.headline());
    assert!(summary.groups[0].ratio_after < summary.groups[0].ratio_before);
}

/// Random inputs with outlier channels 2 and 5 (x30 and x100).
fn inputs(model: &Model, rng: &mut Rng, rows: usize) -> Vec<(String, Tensor)> {
    let g = &model.graph;
    g.inputs
        .iter()
        .map(|&v| {
            let info = g.value(v);
            let k = match info.shape.as_ref().and_then(|s| s.0.last()) {
                Some(kiln_tensor::Dim::Known(k)) => *k,
                _ => K,
            };
            let mut x = rng.vec(rows * k, 1.0);
            for (i, e) in x.iter_mut().enumerate() {
                *e *= match i % k {
                    2 => 30.0,
                    5 => 100.0,
                    _ => 1.0,
                };
            }
            (info.name.clone(), Tensor::from_vec(vec![rows, k], x).unwrap())
        })
        .collect()
}

/// Collects channel maxima of the plan's activations over `samples` random inputs.
fn collect(model: &Model, plan: &kiln_quant::SmoothPlan, rng: &mut Rng, samples: usize) -> (ChannelStats, usize) {
    let obs = plan.observation();
    let observed = with_observed_outputs(model, &obs);
    let mut c = ChannelMaxCollector::new(&obs);
    for _ in 0..samples {
        let feeds = inputs(model, rng, 5);
        let feeds: Vec<(&str, Tensor)> = feeds.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        let outs = run(&observed, &feeds);
        c.observe_outputs(outs.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
    }
    let mem = c.memory_bytes();
    (c.finish().unwrap(), mem)
}

#[test]
fn collector_memory_does_not_grow_with_samples() {
    let model = ln_qkv();
    let plan = plan_smoothing(&model, &SmoothOptions::default());
    let mut rng = Rng::new(1);
    let (s10, m10) = collect(&model, &plan, &mut rng, 10);
    let (s1000, m1000) = collect(&model, &plan, &mut rng, 1000);
    assert_eq!((s10.samples, s1000.samples), (10, 1000));
    assert_eq!(m10, m1000);
    assert_eq!(s1000.values["ln"].len(), K);
}

/// Smoothing is an identity in float: every output within 1e-5 relative of the original's.
#[test]
fn smoothing_is_a_float_identity() {
    let mut rng = Rng::new(7);
    for (name, model) in
        [("ln_qkv", ln_qkv()), ("decomposed", decomposed_ln()), ("linear", linear_producer()), ("unfoldable", unfoldable())]
    {
        for insert_mul in [false, true] {
            for alpha in [0.0, 0.5, 0.85, 1.0] {
                let opts = SmoothOptions { alpha, insert_mul, ..SmoothOptions::default() };
                let plan = plan_smoothing(&model, &opts);
                let (stats, _) = collect(&model, &plan, &mut rng, 4);
                let (smoothed, summary) = smooth(model.clone(), &plan, &stats, &opts).unwrap();
                kiln_ir::verify(&smoothed).unwrap();
                let feeds = inputs(&model, &mut rng, 7);
                let feeds: Vec<(&str, Tensor)> = feeds.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
                let (want, got) = (run(&model, &feeds), run(&smoothed, &feeds));
                for (out, t) in &want {
                    let (d, scale) = max_diff(&got[out], t);
                    assert!(d <= 1e-5 * scale, "{name} alpha {alpha} insert_mul {insert_mul} '{out}': |diff| {d} vs {scale}\n{summary}");
                }
            }
        }
    }
}

/// A Mul by a scalar (GELU's final 0.5) is not folded: the expanded constant would hide the
/// GELU pattern from fusion. A Mul by K channels (a gamma) is.
#[test]
fn scalar_mul_is_not_a_fold() {
    for (shape, folded) in [(vec![], false), (vec![1], false), (vec![K], true)] {
        let mut b = B::new(15);
        let x = b.input("x", &["N", "8"]);
        let w1 = b.weight("fc1.w", &[K, K], 1.0);
        let c = b.weight("half", &shape, 1.0);
        let w2 = b.weight("fc2.w", &[K, 4], 1.0);
        let h = b.op("fc1", "MatMul", &[x, w1], vec![]);
        let m = b.op("m", "Mul", &[h, c], vec![]);
        let y = b.op("fc2", "MatMul", &[m, w2], vec![]);
        b.output(y, &["N", "4"]);
        let plan = plan_smoothing(&b.model(), &SmoothOptions::default());
        assert_eq!(plan.groups.len(), usize::from(folded), "{shape:?}: {:?}", plan.skipped);
        if !folded {
            assert!(plan.skipped[1].1.contains("as GELU's 0.5"), "{:?}", plan.skipped);
        }
    }
}
