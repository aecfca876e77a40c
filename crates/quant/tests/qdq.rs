//! The QDQ rewrite on small graphs: IR snapshots (static and dynamic), selection rules, and
//! the quantized models' outputs against the float ones on the reference executor.
#![allow(clippy::unwrap_used)]

mod common;

use common::{B, Rng, max_diff, run};
use kiln_ir::{Attr, Model, dump};
use kiln_quant::{CalibMethod, Calibrator, QDType, QuantOptions, Range, Ranges, plan_observation, quantize, with_observed_outputs};
use kiln_tensor::Tensor;

/// x[N,8] -> MatMul(W1[8,4]) -> Add(b1) -> Relu -> Gemm(W2[3,4], C=b2, transB=1, alpha=0.5);
/// x also feeds a second MatMul (W3[8,3]) sharing x's quantization; the sum is the output.
fn mlp() -> Model {
    let mut b = B::new(1);
    let x = b.input("x", &["N", "8"]);
    let w1 = b.weight("w1", &[8, 4], 1.0);
    let b1 = b.weight("b1", &[4], 0.1);
    let w2 = b.weight("w2", &[3, 4], 1.0);
    let b2 = b.weight("b2", &[3], 0.1);
    let w3 = b.weight("w3", &[8, 3], 0.5);
    let h = b.op("h", "MatMul", &[x, w1], vec![]);
    let hb = b.op("hb", "Add", &[h, b1], vec![]);
    let r = b.op("r", "Relu", &[hb], vec![]);
    let y = b.op("y", "Gemm", &[r, w2, b2], vec![("transB", Attr::Int(1)), ("alpha", Attr::Float(0.5))]);
    let skip = b.op("skip", "MatMul", &[x, w3], vec![]);
    let out = b.op("out", "Add", &[y, skip], vec![]);
    b.output(out, &["N", "3"]);
    b.model()
}

/// x[1,2,6,6] -> Conv(W[4,2,3,3], B) -> Relu -> depthwise Conv(W[4,1,3,3], group 4) ->
/// GlobalAveragePool -> Flatten -> Gemm(W[4,3]) and a Conv whose weight is an input (kept float).
fn convnet() -> Model {
    let mut b = B::new(2);
    let x = b.input("x", &["1", "2", "6", "6"]);
    let wk = b.input("wk", &["4", "4", "1", "1"]);
    let w1 = b.weight("c1.w", &[4, 2, 3, 3], 0.5);
    let b1 = b.weight("c1.b", &[4], 0.1);
    let w2 = b.weight("dw.w", &[4, 1, 3, 3], 0.5);
    let w3 = b.weight("fc.w", &[4, 3], 1.0);
    let c1 = b.op("c1", "Conv", &[x, w1, b1], vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))]);
    let r = b.op("r1", "Relu", &[c1], vec![]);
    let dw = b.op("dw", "Conv", &[r, w2], vec![("group", Attr::Int(4))]);
    let k = b.op("k", "Conv", &[dw, wk], vec![]);
    let p = b.op("pool", "GlobalAveragePool", &[k], vec![]);
    let f = b.op("flat", "Flatten", &[p], vec![]);
    let y = b.op("fc", "Gemm", &[f, w3], vec![]);
    b.output(y, &["1", "3"]);
    b.model()
}

/// Static ranges for every observed value, computed by MinMax over a few random inputs.
fn calibrate(model: &Model, opts: &QuantOptions, inputs: &[Vec<(&str, Tensor)>]) -> Ranges {
    let obs = plan_observation(model, opts);
    let observed = with_observed_outputs(model, &obs);
    let mut cal = Calibrator::new(CalibMethod::MinMax, &obs);
    for feeds in inputs {
        let outs = run(&observed, feeds);
        cal.observe_outputs(outs.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
    }
    cal.finish().unwrap()
}

fn ranges(values: &[(&str, f32, f32)]) -> Ranges {
    Ranges {
        method: CalibMethod::MinMax,
        samples: 1,
        values: values.iter().map(|&(n, lo, hi)| (n.to_string(), Range { lo, hi })).collect(),
    }
}

#[test]
fn mlp_static_snapshot() {
    let model = mlp();
    let opts = QuantOptions::default();
    assert_eq!(plan_observation(&model, &opts).values, ["x", "r"]);
    let (q, summary) = quantize(&model, &opts, Some(&ranges(&[("x", -1.0, 1.0), ("r", 0.0, 2.0)]))).unwrap();
    insta::assert_snapshot!(dump(&q));
    insta::assert_snapshot!("mlp_static_summary", summary.to_string());
    assert!(!summary.data_free);
    assert_eq!(summary.nodes[1].weight.folded_alpha, Some(0.5));
}

#[test]
fn mlp_dynamic_snapshot() {
    let (q, summary) = quantize(&mlp(), &QuantOptions::default(), None).unwrap();
    insta::assert_snapshot!(dump(&q));
    insta::assert_snapshot!("mlp_dynamic_summary", summary.to_string());
    assert!(summary.data_free);
    assert!(summary.to_string().contains("DATA-FREE"));
}

#[test]
fn convnet_static_snapshot() {
    let model = convnet();
    let opts = QuantOptions { activation: QDType::I8, ..QuantOptions::default() };
    let obs = plan_observation(&model, &opts);
    assert_eq!(obs.values, ["x", "r1", "flat"]);
    assert_eq!(obs.excluded.len(), 1);
    assert!(obs.excluded[0].reason.contains("not a constant"), "{:?}", obs.excluded);
    let r = ranges(&[("x", -1.0, 1.0), ("r1", 0.0, 1.5), ("flat", -0.5, 0.75)]);
    let (q, summary) = quantize(&model, &opts, Some(&r)).unwrap();
    insta::assert_snapshot!(dump(&q));
    insta::assert_snapshot!("convnet_static_summary", summary.to_string());
    let json = serde_json::to_string(&summary).unwrap();
    let back: kiln_quant::QuantSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(back, summary);
}

#[test]
fn exclusion_by_name_and_op() {
    let model = mlp();
    let opts = QuantOptions { exclude_nodes: vec!["skip".into()], exclude_ops: vec!["Gemm".into()], ..QuantOptions::default() };
    let (q, summary) = quantize(&model, &opts, None).unwrap();
    assert_eq!(summary.nodes.len(), 1);
    let reasons: Vec<(&str, &str)> = summary.excluded.iter().map(|e| (e.node.as_str(), e.reason.as_str())).collect();
    assert_eq!(reasons, [("y", "excluded by op (Gemm)"), ("skip", "excluded by name")]);
    // The float weights of excluded nodes stay; the quantized one's float copy is gone.
    let names: Vec<&str> = q.graph.initializers.keys().map(|&v| q.graph.value(v).name.as_str()).collect();
    assert!(names.contains(&"w2") && names.contains(&"w3") && !names.contains(&"w1"), "{names:?}");
}

#[test]
fn missing_range_is_an_error_naming_the_value() {
    let err = quantize(&mlp(), &QuantOptions::default(), Some(&ranges(&[("x", -1.0, 1.0)]))).unwrap_err().to_string();
    assert!(err.contains("'r'") && err.contains("'y'"), "{err}");
}

#[test]
fn old_opsets_are_raised_or_refused() {
    let mut model = mlp();
    model.opsets.insert(String::new(), 11);
    let (q, summary) = quantize(&model, &QuantOptions::default(), None).unwrap();
    assert_eq!((summary.opset_from, summary.opset_to, q.opsets[""]), (11, 13, 13));
    let mut b = B::new(3);
    let x = b.input("x", &["2", "4"]);
    let w = b.weight("w", &[4, 4], 1.0);
    let h = b.op("h", "MatMul", &[x, w], vec![]);
    let s = b.op("s", "Softmax", &[h], vec![]);
    b.output(s, &["2", "4"]);
    let mut model = b.model();
    model.opsets.insert(String::new(), 11);
    model.graph.nodes.iter_mut().for_each(|n| n.opset = 11);
    let err = quantize(&model, &QuantOptions::default(), None).unwrap_err().to_string();
    assert!(err.contains("'s' (Softmax)") && err.contains("opset 13"), "{err}");
}

/// Quantized outputs stay close to float ones, static (u8 and i8) and dynamic.
#[test]
fn quantized_models_track_the_float_ones() {
    let mut rng = Rng::new(5);
    for (model, input, shape) in [(mlp(), "x", vec![16, 8]), (convnet(), "x", vec![1, 2, 6, 6])] {
        let feeds = |rng: &mut Rng| {
            let n = shape.iter().product();
            let mut v = vec![(input, Tensor::from_vec(shape.clone(), rng.vec(n, 1.0)).unwrap())];
            if model.graph.inputs.len() > 1 {
                v.push(("wk", Tensor::from_vec(vec![4, 4, 1, 1], rng.vec(16, 0.5)).unwrap()));
            }
            v
        };
        // The test input is one of the calibration samples, so no value saturates: what is
        // measured is the rounding error of int8, not the calibration set's coverage.
        let calib: Vec<_> = (0..8).map(|_| feeds(&mut rng)).collect();
        let test = calib[3].clone();
        let want = run(&model, &test);
        for (label, opts, with_ranges) in [
            ("static u8", QuantOptions::default(), true),
            ("static i8", QuantOptions { activation: QDType::I8, ..QuantOptions::default() }, true),
            ("dynamic", QuantOptions::default(), false),
        ] {
            let r = with_ranges.then(|| calibrate(&model, &opts, &calib));
            let (q, _) = quantize(&model, &opts, r.as_ref()).unwrap();
            let got = run(&q, &test);
            for (name, t) in &want {
                let (d, scale) = max_diff(&got[name], t);
                eprintln!("{label} '{name}': max |diff| {d} vs max |y| {scale}");
                assert!(d <= 0.03 * scale, "{label} '{name}': max |diff| {d} vs max |y| {scale}");
            }
        }
    }
}

/// The conv net's QDQ graphs (i8 per-channel 4-D weights, grouped Conv, Gemm) in onnxruntime.
#[test]
fn convnet_qdq_runs_in_onnxruntime() {
    let model = convnet();
    let mut rng = Rng::new(9);
    let feeds = vec![
        ("x", Tensor::from_vec(vec![1, 2, 6, 6], rng.vec(72, 1.0)).unwrap()),
        ("wk", Tensor::from_vec(vec![4, 4, 1, 1], rng.vec(16, 0.5)).unwrap()),
    ];
    for activation in [Some(QDType::I8), Some(QDType::U8), None] {
        let opts = QuantOptions { activation: activation.unwrap_or(QDType::U8), ..QuantOptions::default() };
        let r = activation.map(|_| calibrate(&model, &opts, std::slice::from_ref(&feeds)));
        let (q, _) = quantize(&model, &opts, r.as_ref()).unwrap();
        let Some(ort) = common::ort_run(&q, &feeds) else { return };
        let (d, scale) = max_diff(&ort["fc"], &run(&q, &feeds)["fc"]);
        assert!(d <= 1e-5 * scale.max(1.0), "{activation:?}: onnxruntime and the reference differ by {d}");
    }
}

/// Options read from kiln.toml / JSON take the defaults for what they leave out.
#[test]
fn options_deserialise_with_defaults() {
    let o: QuantOptions = serde_json::from_str(r#"{"exclude_ops": ["Conv"]}"#).unwrap();
    assert_eq!(o, QuantOptions { exclude_ops: vec!["Conv".into()], ..QuantOptions::default() });
    let o: QuantOptions = serde_json::from_str(r#"{"activation": "i8"}"#).unwrap();
    assert_eq!(o.activation, QDType::I8);
    let m: CalibMethod = serde_json::from_str(r#"{"method": "percentile", "percentile": 99.9, "symmetric": true}"#).unwrap();
    assert_eq!(m, CalibMethod::Percentile { percentile: 99.9, symmetric: true });
}
