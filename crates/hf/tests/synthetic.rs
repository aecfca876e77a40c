//! Builders on tiny random checkpoints: the IR of a 2-layer BERT (snapshot), RoBERTa and
//! DistilBERT checkpoints made from the same weights give BERT's outputs, pooling heads, weight
//! rebinding, and the errors for what is missing or unknown.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use kiln_hf::{BuildOptions, Config, Head, Pooling};
use kiln_reference::Value;
use kiln_safetensors::{Checkpoint, SafetensorsFile, serialize};
use kiln_tensor::{DType, Tensor};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

const H: usize = 8;
const HEADS: usize = 2;
const FF: usize = 16;
const VOCAB: usize = 20;
const MAX_POS: usize = 12;
const LAYERS: usize = 2;

fn bert_config() -> serde_json::Value {
    serde_json::json!({
        "model_type": "bert", "hidden_size": H, "num_attention_heads": HEADS, "intermediate_size": FF,
        "num_hidden_layers": LAYERS, "vocab_size": VOCAB, "max_position_embeddings": MAX_POS, "type_vocab_size": 2,
        "hidden_act": "gelu", "layer_norm_eps": 1e-5
    })
}

fn random(rng: &mut rand_chacha::ChaCha8Rng, shape: &[usize], scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), (0..n).map(|_| rng.random_range(-scale..scale)).collect::<Vec<f32>>()).unwrap()
}

/// A random BERT checkpoint, by name.
fn bert_weights(seed: u64) -> BTreeMap<String, Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut w = BTreeMap::new();
    let put = |w: &mut BTreeMap<String, Tensor>, name: String, shape: &[usize], scale: f32, rng: &mut rand_chacha::ChaCha8Rng| {
        w.insert(name, random(rng, shape, scale));
    };
    put(&mut w, "embeddings.word_embeddings.weight".into(), &[VOCAB, H], 1.0, &mut rng);
    put(&mut w, "embeddings.position_embeddings.weight".into(), &[MAX_POS, H], 0.5, &mut rng);
    put(&mut w, "embeddings.token_type_embeddings.weight".into(), &[2, H], 0.5, &mut rng);
    put(&mut w, "embeddings.LayerNorm.weight".into(), &[H], 1.5, &mut rng);
    put(&mut w, "embeddings.LayerNorm.bias".into(), &[H], 0.1, &mut rng);
    for i in 0..LAYERS {
        let l = format!("encoder.layer.{i}");
        for (lin, out, inp) in [
            ("attention.self.query", H, H),
            ("attention.self.key", H, H),
            ("attention.self.value", H, H),
            ("attention.output.dense", H, H),
            ("intermediate.dense", FF, H),
            ("output.dense", H, FF),
        ] {
            put(&mut w, format!("{l}.{lin}.weight"), &[out, inp], 0.5, &mut rng);
            put(&mut w, format!("{l}.{lin}.bias"), &[out], 0.1, &mut rng);
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(&mut w, format!("{l}.{norm}.weight"), &[H], 1.5, &mut rng);
            put(&mut w, format!("{l}.{norm}.bias"), &[H], 0.1, &mut rng);
        }
    }
    w
}

fn checkpoint(w: &BTreeMap<String, Tensor>) -> Checkpoint {
    let tensors: Vec<(String, Tensor)> = w.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Checkpoint::from_file(SafetensorsFile::from_bytes("synthetic.safetensors", serialize(&tensors, &BTreeMap::new()).unwrap()).unwrap())
}

fn build(config: serde_json::Value, w: &BTreeMap<String, Tensor>, head: Head) -> Result<kiln_ir::Model, kiln_hf::HfError> {
    kiln_hf::build_from(&Config::from_json(config).unwrap(), &checkpoint(w), head, &BuildOptions::default(), &kiln_reference::op_set())
}

/// Two sentences of 5 and 3 tokens, padded; no id is 0 except the padding.
fn feeds(types: bool) -> Vec<(String, Value)> {
    let ids = Tensor::from_vec(vec![2, 5], vec![3i64, 7, 11, 5, 2, 4, 9, 13, 0, 0]).unwrap();
    let mask = Tensor::from_vec(vec![2, 5], vec![1i64, 1, 1, 1, 1, 1, 1, 1, 0, 0]).unwrap();
    let mut f = vec![("input_ids".to_string(), Value::Tensor(ids)), ("attention_mask".to_string(), Value::Tensor(mask))];
    if types {
        f.push(("token_type_ids".to_string(), Value::Tensor(Tensor::zeros(DType::I64, vec![2, 5]))));
    }
    f
}

fn run(model: &kiln_ir::Model, feeds: Vec<(String, Value)>) -> BTreeMap<String, Vec<f32>> {
    kiln_reference::run(model, feeds).unwrap().into_iter().map(|(n, v)| (n, v.as_tensor().unwrap().as_slice::<f32>().unwrap().to_vec())).collect()
}

/// Max difference over the unpadded tokens of last_hidden_state ([2, 5, H]; row 1 has 3 tokens).
fn hidden_diff(a: &[f32], b: &[f32]) -> f32 {
    let mut worst: f32 = 0.0;
    for (s, n) in [(0usize, 5usize), (1, 3)] {
        for t in 0..n {
            let at = (s * 5 + t) * H;
            for k in at..at + H {
                worst = worst.max((a[k] - b[k]).abs());
            }
        }
    }
    worst
}

#[test]
fn tiny_bert_ir() {
    let model = build(bert_config(), &bert_weights(1), Head { pooling: Pooling::Mean, normalize: true }).unwrap();
    insta::assert_snapshot!(kiln_ir::dump(&model));
}

#[test]
fn tiny_bert_runs_and_pools() {
    let w = bert_weights(1);
    let none = build(bert_config(), &w, Head::default()).unwrap();
    assert_eq!(none.graph.outputs.len(), 1);
    let out = run(&none, feeds(true));
    let hidden = &out["last_hidden_state"];
    assert_eq!(hidden.len(), 2 * 5 * H);
    assert!(hidden.iter().all(|x| x.is_finite()));
    for (pooling, normalize) in
        [(Pooling::Mean, false), (Pooling::Mean, true), (Pooling::Cls, false), (Pooling::Max, false), (Pooling::MeanSqrtLen, true)]
    {
        let m = build(bert_config(), &w, Head { pooling, normalize }).unwrap();
        let o = run(&m, feeds(true));
        assert!(hidden_diff(&o["last_hidden_state"], hidden) == 0.0);
        let e = &o["sentence_embedding"];
        for (s, n) in [(0usize, 5usize), (1, 3)] {
            let tok = |t: usize, k: usize| hidden[(s * 5 + t) * H + k];
            let mut want: Vec<f32> = (0..H)
                .map(|k| match pooling {
                    Pooling::Cls => tok(0, k),
                    Pooling::Max => (0..n).map(|t| tok(t, k)).fold(f32::MIN, f32::max),
                    Pooling::Mean => (0..n).map(|t| tok(t, k)).sum::<f32>() / n as f32,
                    Pooling::MeanSqrtLen => (0..n).map(|t| tok(t, k)).sum::<f32>() / (n as f32).sqrt(),
                    Pooling::None => unreachable!(),
                })
                .collect();
            if normalize {
                let norm = want.iter().map(|x| x * x).sum::<f32>().sqrt();
                want.iter_mut().for_each(|x| *x /= norm);
            }
            let got = &e[s * H..(s + 1) * H];
            let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-5, "{pooling:?} normalize={normalize} sentence {s}: {got:?} vs {want:?}");
        }
    }
}

/// The same weights under RoBERTa's names and position rule give BERT's hidden states.
#[test]
fn roberta_matches_bert() {
    let w = bert_weights(2);
    let bert = run(&build(bert_config(), &w, Head::default()).unwrap(), feeds(true));
    // RoBERTa positions start at pad + 1 = 1: shift the table by one; one token type (row 0).
    let mut r: BTreeMap<String, Tensor> = w.iter().map(|(k, v)| (format!("roberta.{k}"), v.clone())).collect();
    let pos = w["embeddings.position_embeddings.weight"].as_slice::<f32>().unwrap();
    let mut shifted = vec![0f32; (MAX_POS + 1) * H];
    shifted[H..].copy_from_slice(pos);
    r.insert("roberta.embeddings.position_embeddings.weight".into(), Tensor::from_vec(vec![MAX_POS + 1, H], shifted).unwrap());
    let types = w["embeddings.token_type_embeddings.weight"].as_slice::<f32>().unwrap();
    r.insert("roberta.embeddings.token_type_embeddings.weight".into(), Tensor::from_vec(vec![1, H], types[..H].to_vec()).unwrap());
    let mut cfg = bert_config();
    cfg["model_type"] = "xlm-roberta".into();
    cfg["max_position_embeddings"] = (MAX_POS + 1).into();
    cfg["type_vocab_size"] = 1.into();
    cfg["pad_token_id"] = 0.into();
    let m = build(cfg, &r, Head::default()).unwrap();
    let inputs: Vec<&str> = m.graph.inputs.iter().map(|&v| m.graph.value(v).name.as_str()).collect();
    assert_eq!(inputs, ["input_ids", "attention_mask"], "one token type: no token_type_ids input");
    let roberta = run(&m, feeds(false));
    let d = hidden_diff(&roberta["last_hidden_state"], &bert["last_hidden_state"]);
    assert!(d < 1e-5, "roberta vs bert: {d}");
}

/// The same weights under DistilBERT's names (token type 0 folded into the word table) give
/// BERT's hidden states.
#[test]
fn distilbert_matches_bert() {
    let w = bert_weights(3);
    let bert = run(&build(bert_config(), &w, Head::default()).unwrap(), feeds(true));
    let rename = [
        ("attention.self.query", "attention.q_lin"),
        ("attention.self.key", "attention.k_lin"),
        ("attention.self.value", "attention.v_lin"),
        ("attention.output.dense", "attention.out_lin"),
        ("attention.output.LayerNorm", "sa_layer_norm"),
        ("intermediate.dense", "ffn.lin1"),
        ("output.dense", "ffn.lin2"),
        ("output.LayerNorm", "output_layer_norm"),
    ];
    let mut d = BTreeMap::new();
    for (k, v) in &w {
        let mut name = k.replace("encoder.layer.", "transformer.layer.");
        for (from, to) in rename {
            if name.contains(&format!(".{from}.")) {
                name = name.replace(&format!(".{from}."), &format!(".{to}."));
                break;
            }
        }
        d.insert(format!("distilbert.{name}"), v.clone());
    }
    d.remove("distilbert.embeddings.token_type_embeddings.weight");
    let types = &w["embeddings.token_type_embeddings.weight"].as_slice::<f32>().unwrap()[..H];
    let word: Vec<f32> = w["embeddings.word_embeddings.weight"]
        .as_slice::<f32>()
        .unwrap()
        .chunks(H)
        .flat_map(|row| row.iter().zip(types).map(|(a, b)| a + b))
        .collect();
    d.insert("distilbert.embeddings.word_embeddings.weight".into(), Tensor::from_vec(vec![VOCAB, H], word).unwrap());
    let cfg = serde_json::json!({
        "model_type": "distilbert", "dim": H, "n_heads": HEADS, "hidden_dim": FF, "n_layers": LAYERS,
        "vocab_size": VOCAB, "max_position_embeddings": MAX_POS, "activation": "gelu"
    });
    // DistilBERT's LayerNorm eps is 1e-12; BERT's here 1e-5: compare with a BERT of eps 1e-12.
    let mut bcfg = bert_config();
    bcfg["layer_norm_eps"] = 1e-12.into();
    let bert12 = run(&build(bcfg, &w, Head::default()).unwrap(), feeds(true));
    let distil = run(&build(cfg, &d, Head::default()).unwrap(), feeds(false));
    let diff = hidden_diff(&distil["last_hidden_state"], &bert12["last_hidden_state"]);
    assert!(diff < 1e-4, "distilbert vs bert: {diff}");
    assert!(hidden_diff(&bert["last_hidden_state"], &bert12["last_hidden_state"]) < 1e-2);
}

/// The tanh GELU, relu and silu activations build and differ from the erf GELU.
#[test]
fn activations() {
    let w = bert_weights(4);
    let base = run(&build(bert_config(), &w, Head::default()).unwrap(), feeds(true));
    for act in ["gelu_new", "gelu_pytorch_tanh", "relu", "silu", "quick_gelu"] {
        let mut cfg = bert_config();
        cfg["hidden_act"] = act.into();
        let o = run(&build(cfg, &w, Head::default()).unwrap(), feeds(true));
        let d = hidden_diff(&o["last_hidden_state"], &base["last_hidden_state"]);
        assert!(d > 0.0 && d.is_finite(), "{act}: {d}");
        if act.starts_with("gelu") {
            assert!(d < 0.05, "{act} is an approximation of gelu: {d}");
        }
    }
}

#[test]
fn errors_name_what_is_missing() {
    let w = bert_weights(5);
    let msg = |r: Result<kiln_ir::Model, kiln_hf::HfError>| r.err().map(|e| e.to_string()).unwrap_or_default();

    let mut cfg = bert_config();
    cfg["model_type"] = "llama".into();
    let e = msg(build(cfg, &w, Head::default()));
    assert!(e.contains("\"llama\" has no Kiln builder") && e.contains("bert, camembert, distilbert, roberta, xlm-roberta"), "{e}");

    let mut cfg = bert_config();
    cfg.as_object_mut().unwrap().remove("model_type");
    assert!(msg(build(cfg, &w, Head::default())).contains("no \"model_type\""));

    let mut cfg = bert_config();
    cfg.as_object_mut().unwrap().remove("hidden_size");
    let e = msg(build(cfg, &w, Head::default()));
    assert!(e.contains("\"hidden_size\" is missing"), "{e}");

    let mut cfg = bert_config();
    cfg["num_attention_heads"] = 3.into();
    assert!(msg(build(cfg, &w, Head::default())).contains("does not divide the hidden size"));

    let mut cfg = bert_config();
    cfg["hidden_act"] = "mish".into();
    assert!(msg(build(cfg, &w, Head::default())).contains("activation \"mish\""));

    let mut missing = w.clone();
    missing.remove("encoder.layer.1.attention.self.key.weight");
    let e = msg(build(bert_config(), &missing, Head::default()));
    assert!(e.contains("no tensor 'encoder.layer.1.attention.self.key.weight'") && e.contains("'bert.'"), "{e}");

    let mut wrong = w.clone();
    wrong.insert("encoder.layer.0.intermediate.dense.weight".into(), Tensor::zeros(DType::F32, vec![FF, H + 1]));
    let e = msg(build(bert_config(), &wrong, Head::default()));
    assert!(e.contains("encoder.layer.0.intermediate.dense.weight") && e.contains("[16, 9]") && e.contains("[16, 8]"), "{e}");

    // A whole checkpoint of another family.
    let renamed: BTreeMap<String, Tensor> = w.iter().map(|(k, v)| (format!("model.{k}"), v.clone())).collect();
    let e = msg(build(bert_config(), &renamed, Head::default()));
    assert!(e.contains("embeddings.word_embeddings.weight") && e.contains("is it the checkpoint of this config.json's model_type"), "{e}");
}

/// f16 and bf16 checkpoints build f32 graphs.
#[test]
fn half_precision_checkpoint() {
    let w = bert_weights(6);
    let half: BTreeMap<String, Tensor> = w.iter().map(|(k, v)| (k.clone(), v.cast(DType::BF16).unwrap())).collect();
    let a = run(&build(bert_config(), &w, Head::default()).unwrap(), feeds(true));
    let m = build(bert_config(), &half, Head::default()).unwrap();
    assert!(m.graph.initializers.values().all(|t| t.dtype() != DType::BF16));
    let b = run(&m, feeds(true));
    let d = hidden_diff(&a["last_hidden_state"], &b["last_hidden_state"]);
    assert!(d > 0.0 && d < 0.1, "bf16 rounding: {d}");
}

/// Fine-tuned weights rebound onto the built graph by name give the model built from them;
/// the report names what did not match.
#[test]
fn rebinding() {
    let base = bert_weights(7);
    let tuned_w = bert_weights(8);
    let mut model = build(bert_config(), &base, Head::default()).unwrap();
    let want = run(&build(bert_config(), &tuned_w, Head::default()).unwrap(), feeds(true));

    let mut file = tuned_w.clone();
    file.insert("classifier.weight".into(), Tensor::zeros(DType::F32, vec![2, H]));
    file.insert("encoder.layer.0.output.dense.bias".into(), Tensor::zeros(DType::F32, vec![H + 1]));
    file.insert("embeddings.LayerNorm.bias".into(), tuned_w["embeddings.LayerNorm.bias"].cast(DType::F16).unwrap());
    let report = kiln_hf::rebind(&mut model, &checkpoint(&file)).unwrap();
    println!("{}", report.summary());
    assert_eq!(report.unmatched, ["classifier.weight"]);
    assert_eq!(report.shape_mismatch, [("encoder.layer.0.output.dense.bias".to_string(), vec![H], vec![H + 1])]);
    assert_eq!(report.converted, [("embeddings.LayerNorm.bias".to_string(), DType::F16, DType::F32)]);
    assert_eq!(report.matched.len(), base.len() - 1);
    assert!(report.not_in_checkpoint.iter().all(|n| n.starts_with("/const/")), "{:?}", report.not_in_checkpoint);

    // With the mismatched tensor fixed, the outputs are those of the tuned model (f16 bias aside).
    let mut fixed = tuned_w.clone();
    fixed.insert("embeddings.LayerNorm.bias".into(), tuned_w["embeddings.LayerNorm.bias"].cast(DType::F16).unwrap().cast(DType::F32).unwrap());
    let mut model = build(bert_config(), &base, Head::default()).unwrap();
    kiln_hf::rebind(&mut model, &checkpoint(&fixed)).unwrap();
    let got = run(&model, feeds(true));
    assert!(hidden_diff(&got["last_hidden_state"], &want["last_hidden_state"]) < 1e-2);
    let mut exact = build(bert_config(), &fixed, Head::default()).unwrap();
    kiln_hf::rebind(&mut exact, &checkpoint(&fixed)).unwrap();
    assert_eq!(run(&exact, feeds(true))["last_hidden_state"], got["last_hidden_state"]);
}

/// A folder on disk: config.json, model.safetensors, sentence-transformers pooling files.
#[test]
fn folder_with_pooling_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), bert_config().to_string()).unwrap();
    let tensors: Vec<(String, Tensor)> = bert_weights(9).into_iter().collect();
    kiln_safetensors::write(&dir.path().join("model.safetensors"), &tensors, &BTreeMap::new()).unwrap();
    let ops = kiln_reference::op_set();
    let m = kiln_hf::build(dir.path(), &BuildOptions::default(), &ops).unwrap();
    assert_eq!(m.graph.outputs.len(), 1, "no pooling files: no sentence embedding");
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(dir.path().join("1_Pooling/config.json"), r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#).unwrap();
    std::fs::write(
        dir.path().join("modules.json"),
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
    )
    .unwrap();
    let m = kiln_hf::build(&dir.path().join("model.safetensors"), &BuildOptions::default(), &ops).unwrap();
    assert_eq!(m.metadata["hf.pooling"], "cls");
    assert_eq!(m.metadata["hf.normalize"], "false");
    std::fs::write(dir.path().join("1_Pooling/config.json"), r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#).unwrap();
    let e = kiln_hf::build(dir.path(), &BuildOptions::default(), &ops).err().unwrap().to_string();
    assert!(e.contains("2 modes") && e.contains("pooling_mode_mean_tokens"), "{e}");
    let opts = BuildOptions { head: Some(Head { pooling: Pooling::Mean, normalize: true }), ..Default::default() };
    assert!(kiln_hf::build(dir.path(), &opts, &ops).is_ok(), "an explicit head overrides the files");

    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let e = kiln_hf::build(dir.path(), &opts, &ops).err().unwrap().to_string();
    assert!(e.contains("no weights found"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = kiln_hf::build(empty.path(), &opts, &ops).err().unwrap().to_string();
    assert!(e.contains("no config.json"), "{e}");
}
