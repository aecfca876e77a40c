//! `kiln export` and `--weights` as a user meets them, on a tiny BERT folder made here
//! (config.json + model.safetensors).

use kiln_tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const H: usize = 8;

fn kiln(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).env("KILN_STORE", Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-store")).output().expect("kiln runs");
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Deterministic small values.
fn values(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 1000.0 - 0.5) * 0.2).collect();
    Tensor::from_vec(shape.to_vec(), v).expect("shape fits")
}

fn weights(seed: usize) -> Vec<(String, Tensor)> {
    let mut w = vec![
        ("embeddings.word_embeddings.weight".to_string(), values(&[30, H], seed)),
        ("embeddings.position_embeddings.weight".to_string(), values(&[16, H], seed + 1)),
        ("embeddings.token_type_embeddings.weight".to_string(), values(&[2, H], seed + 2)),
        ("embeddings.LayerNorm.weight".to_string(), values(&[H], seed + 3)),
        ("embeddings.LayerNorm.bias".to_string(), values(&[H], seed + 4)),
    ];
    let l = "encoder.layer.0";
    for (k, (lin, out, inp)) in [
        ("attention.self.query", H, H),
        ("attention.self.key", H, H),
        ("attention.self.value", H, H),
        ("attention.output.dense", H, H),
        ("intermediate.dense", 16, H),
        ("output.dense", H, 16),
    ]
    .into_iter()
    .enumerate()
    {
        w.push((format!("{l}.{lin}.weight"), values(&[out, inp], seed + 10 + k)));
        w.push((format!("{l}.{lin}.bias"), values(&[out], seed + 20 + k)));
    }
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
        w.push((format!("{l}.{norm}.weight"), values(&[H], seed + 30)));
        w.push((format!("{l}.{norm}.bias"), values(&[H], seed + 31)));
    }
    w
}

fn folder(dir: &Path) -> PathBuf {
    let m = dir.join("tiny-bert");
    std::fs::create_dir_all(&m).expect("mkdir");
    let config = r#"{"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2, "intermediate_size": 16, "num_hidden_layers": 1,
        "vocab_size": 30, "max_position_embeddings": 16, "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}"#;
    std::fs::write(m.join("config.json"), config).expect("write config");
    kiln_safetensors::write(&m.join("model.safetensors"), &weights(1), &BTreeMap::new()).expect("write weights");
    m
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn export_inspect_and_rebind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = folder(tmp.path());
    let out = tmp.path().join("tiny.onnx");
    let (ok, stdout, stderr) = kiln(&["export", s(&m), "-o", s(&out)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("wrote") && out.is_file(), "{stdout}");

    // The exported file is an ordinary ONNX model to Kiln.
    let (ok, stdout, stderr) = kiln(&["inspect", s(&out)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("input_ids") && stdout.contains("last_hidden_state") && stdout.contains("kiln-hf"), "{stdout}");
    // So is the folder, and the weights file.
    let (ok, stdout, stderr) = kiln(&["inspect", s(&m.join("model.safetensors"))]);
    assert!(ok && stdout.contains("LayerNormalization"), "{stdout}{stderr}");

    // Fine-tuned weights onto the exported graph: a report on stderr, JSON on stdout.
    let mut tuned = weights(2);
    tuned.push(("classifier.weight".into(), values(&[2, H], 9)));
    tuned[0].1 = values(&[31, H], 2);
    let tuned_path = tmp.path().join("tuned.safetensors");
    kiln_safetensors::write(&tuned_path, &tuned, &BTreeMap::new()).expect("write");
    let out2 = tmp.path().join("tuned.onnx");
    let (ok, stdout, stderr) = kiln(&["export", s(&out), "--weights", s(&tuned_path), "-o", s(&out2), "--json"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("20 matched") && stderr.contains("1 shape-mismatched") && stderr.contains("'classifier.weight'"), "{stderr}");
    assert!(stderr.contains("shape mismatch, kept the graph's: 'embeddings.word_embeddings.weight' graph [30, 8], checkpoint [31, 8]"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["rebound"], 20);

    // Weights that match nothing are an error, not a silent no-op.
    let other = tmp.path().join("other.safetensors");
    kiln_safetensors::write(&other, &[("x".into(), values(&[2], 0))], &BTreeMap::new()).expect("write");
    let (ok, _, stderr) = kiln(&["export", s(&out), "--weights", s(&other), "-o", s(&out2)]);
    assert!(!ok && stderr.contains("no tensor name matches an initializer"), "{stderr}");

    // External data when the initializers pass the threshold.
    let ext = tmp.path().join("ext.onnx");
    let (ok, stdout, stderr) = kiln(&["export", s(&m), "-o", s(&ext), "--external-threshold", "100"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("external data") && tmp.path().join("ext.onnx.data").is_file(), "{stdout}");
    let (ok, _, stderr) = kiln(&["inspect", s(&ext)]);
    assert!(ok, "{stderr}");
}

#[test]
fn clear_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = folder(tmp.path());
    // A folder that is neither a Hugging Face model nor a plan.
    let (ok, _, stderr) = kiln(&["export", s(tmp.path()), "-o", s(&tmp.path().join("x.onnx"))]);
    assert!(!ok && stderr.contains("without config.json"), "{stderr}");
    // A truncated checkpoint.
    let bytes = std::fs::read(m.join("model.safetensors")).expect("read");
    std::fs::write(m.join("model.safetensors"), &bytes[..bytes.len() - 10]).expect("write");
    let (ok, _, stderr) = kiln(&["run", s(&m), "--random"]);
    assert!(!ok && stderr.contains("past the end of the data"), "{stderr}");
    // An unknown architecture.
    std::fs::write(m.join("config.json"), r#"{"model_type": "gpt2"}"#).expect("write");
    let (ok, _, stderr) = kiln(&["compile", s(&m), "-o", s(&tmp.path().join("plan"))]);
    assert!(!ok && stderr.contains("\"gpt2\" has no Kiln builder"), "{stderr}");
    // --weights on a compiled plan.
    let plan = tmp.path().join("plan");
    std::fs::create_dir_all(&plan).expect("mkdir");
    let (ok, _, stderr) = kiln(&["run", s(&plan), "--weights", s(&m.join("model.safetensors")), "--random"]);
    assert!(!ok && stderr.contains("weights are fixed"), "{stderr}");
}
