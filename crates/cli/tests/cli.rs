//! The `kiln` binary as a user meets it: small ONNX models built here, then inspect and run.

use kiln_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto::Dimension, tensor_shape_proto::dimension,
    type_proto,
};
use protobuf::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

fn value_info(name: &str, elem: i32, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = Dimension::new();
        dim.value = Some(match d {
            Ok(n) => dimension::Value::DimValue(*n),
            Err(s) => dimension::Value::DimParam(s.to_string()),
        });
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = elem;
    tt.shape = Some(shape).into();
    let mut tp = TypeProto::new();
    tp.value = Some(type_proto::Value::TensorType(tt));
    let mut vi = ValueInfoProto::new();
    vi.name = name.into();
    vi.type_ = Some(tp).into();
    vi
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = format!("{op}_0");
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n
}

/// y = Relu(x + w) with x: f32[batch, 3], plus optional extra nodes.
fn model(extra: Vec<NodeProto>, extra_outputs: &[&str]) -> Vec<u8> {
    let mut g = GraphProto::new();
    g.name = "tiny".into();
    g.input.push(value_info("x", 1, &[Err("batch"), Ok(3)]));
    let mut w = TensorProto::new();
    w.name = "w".into();
    w.data_type = 1;
    w.dims = vec![3];
    w.float_data = vec![-1.0, 0.0, 1.0];
    g.initializer.push(w);
    g.node.push(node("Add", &["x", "w"], &["s"]));
    g.node.push(node("Relu", &["s"], &["y"]));
    g.node.extend(extra);
    g.output.push(value_info("y", 1, &[Err("batch"), Ok(3)]));
    for o in extra_outputs {
        g.output.push(value_info(o, 1, &[]));
    }
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.producer_name = "kiln-tests".into();
    let mut op = OperatorSetIdProto::new();
    op.version = 17;
    m.opset_import.push(op);
    m.graph = Some(g).into();
    m.write_to_bytes().expect("serialize")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p
}

fn kiln(args: &[&str]) -> (bool, String, String) {
    kiln_env(args, &[])
}

fn kiln_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env("KILN_STORE", Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-store"))
        .envs(env.iter().copied())
        .output()
        .expect("run kiln");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn inspect_lists_every_unsupported_op_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut custom = node("FancyOp", &["y"], &["f"]);
    custom.domain = "com.example".into();
    let mut attr = AttributeProto::new();
    attr.name = "k".into();
    attr.type_ = AttributeType::INT.into();
    attr.i = 3;
    custom.attribute.push(attr);
    let p = write(dir.path(), "m.onnx", &model(vec![custom, node("NotAnOnnxOp", &["f"], &["g"])], &["g"]));
    let (ok, out, err) = kiln(&["inspect", p.to_str().expect("utf8 path")]);
    assert!(ok, "{err}");
    assert!(out.contains("com.example::FancyOp"), "{out}");
    assert!(out.contains("NotAnOnnxOp"), "{out}");
    assert!(out.contains("2 unsupported op type(s)"), "{out}");
    assert!(out.contains("x  f32[batch,3]"), "{out}");

    let (ok, json, _) = kiln(&["inspect", p.to_str().expect("utf8 path"), "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["unsupported"], serde_json::json!(["NotAnOnnxOp", "com.example::FancyOp"]));
    assert_eq!(v["parameters"], 3);
    assert_eq!(v["inputs"][0]["shape"], "[batch,3]");

    let (ok, _, err) = kiln(&["run", p.to_str().expect("utf8 path"), "--random"]);
    assert!(!ok);
    assert!(err.contains("FancyOp") && err.contains("NotAnOnnxOp"), "{err}");
}

#[test]
fn run_binds_dims_and_writes_npy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "m.onnx", &model(vec![], &[]));
    let x = kiln_tensor::Tensor::from_vec(vec![2, 3], vec![0.5f32, 0.5, 0.5, 2.0, -3.0, 0.0]).expect("tensor");
    let xp = write(dir.path(), "x.npy", &kiln_tensor::npy::write(&x).expect("npy"));
    let out_dir = dir.path().join("out");
    let (ok, out, err) = kiln(&[
        "run",
        p.to_str().expect("utf8"),
        "--input",
        &format!("x={}", xp.display()),
        "-o",
        out_dir.to_str().expect("utf8"),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("y: f32[2, 3]"), "{out}");
    let y = kiln_tensor::npy::read(&std::fs::read(out_dir.join("y.npy")).expect("y.npy written")).expect("valid npy");
    assert_eq!(y.as_slice::<f32>().expect("f32"), &[0.0, 0.5, 1.5, 1.0, 0.0, 1.0]);
}

#[test]
fn run_random_is_seeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "m.onnx", &model(vec![], &[]));
    let p = p.to_str().expect("utf8");
    let a = kiln(&["run", p, "--random", "--dim", "batch=4", "--seed", "3", "--json"]);
    let b = kiln(&["run", p, "--random", "--dim", "batch=4", "--seed", "3", "--json"]);
    assert!(a.0 && b.0, "{}", a.2);
    let (va, vb): (serde_json::Value, serde_json::Value) = (serde_json::from_str(&a.1).expect("json"), serde_json::from_str(&b.1).expect("json"));
    assert_eq!(va["outputs"], vb["outputs"]);
    assert_eq!(va["outputs"][0]["shape"], serde_json::json!([4, 3]));
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = model(vec![], &[]);
    let truncated = write(dir.path(), "trunc.onnx", &good[..good.len() / 2]);
    let (ok, _, err) = kiln(&["inspect", truncated.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(err.contains("not a valid ONNX protobuf"), "{err}");

    let (ok, _, err) = kiln(&["inspect", "/nonexistent/model.onnx"]);
    assert!(!ok && err.contains("does not exist"), "{err}");

    let p = write(dir.path(), "m.onnx", &good);
    let (ok, _, err) = kiln(&["run", p.to_str().expect("utf8")]);
    assert!(!ok && err.contains("--input x=FILE.npy"), "{err}");

    let wrong = kiln_tensor::Tensor::from_vec(vec![2, 4], vec![0f32; 8]).expect("tensor");
    let wp = write(dir.path(), "w.npy", &kiln_tensor::npy::write(&wrong).expect("npy"));
    let (ok, _, err) = kiln(&["run", p.to_str().expect("utf8"), "--input", &format!("x={}", wp.display())]);
    assert!(!ok && err.contains("dimension 1 must be 3"), "{err}");

    let (ok, _, err) = kiln(&["run", p.to_str().expect("utf8"), "--input", "nope=x.npy"]);
    assert!(!ok && err.contains("'nope' is not an input"), "{err}");
}

/// Outputs that are not numeric tensors: a string tensor (.npy unicode), a sequence of
/// tensors (a folder of .npy files) and a sequence of maps from ai.onnx.ml ZipMap (.json).
#[test]
fn run_writes_strings_sequences_and_maps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cast = node("Cast", &["y"], &["ystr"]);
    let mut to = AttributeProto::new();
    to.name = "to".into();
    to.type_ = AttributeType::INT.into();
    to.i = 8; // STRING
    cast.attribute.push(to);
    let mut split = node("SplitToSequence", &["y"], &["seq"]);
    let mut axis = AttributeProto::new();
    axis.name = "axis".into();
    axis.type_ = AttributeType::INT.into();
    axis.i = 1;
    split.attribute.push(axis);
    let mut zip = node("ZipMap", &["y"], &["probs"]);
    zip.domain = "ai.onnx.ml".into();
    let mut labels = AttributeProto::new();
    labels.name = "classlabels_int64s".into();
    labels.type_ = AttributeType::INTS.into();
    labels.ints = vec![10, 20, 30];
    zip.attribute.push(labels);
    let mut m = ModelProto::parse_from_bytes(&model(vec![cast, split, zip], &["ystr", "seq", "probs"])).expect("parse");
    let mut ml = OperatorSetIdProto::new();
    ml.domain = "ai.onnx.ml".into();
    ml.version = 1;
    m.opset_import.push(ml);
    let p = write(dir.path(), "m.onnx", &m.write_to_bytes().expect("serialize"));
    let x = kiln_tensor::Tensor::from_vec(vec![1, 3], vec![0.5f32, 2.0, -3.0]).expect("tensor");
    let xp = write(dir.path(), "x.npy", &kiln_tensor::npy::write(&x).expect("npy"));
    let out_dir = dir.path().join("out");
    let (ok, out, err) =
        kiln(&["run", p.to_str().expect("utf8"), "--input", &format!("x={}", xp.display()), "-o", out_dir.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    assert!(out.contains("seq: sequence of 3"), "{out}");
    assert!(out.contains("probs: sequence of maps of 1  first [{10: 0.000000, 20: 2.000000, 30: 0.000000}]"), "{out}");
    let s = kiln_tensor::npy::read(&std::fs::read(out_dir.join("ystr.npy")).expect("ystr.npy")).expect("npy");
    assert_eq!(s.data(), &kiln_tensor::Data::String(vec!["0".into(), "2".into(), "0".into()]));
    let e = kiln_tensor::npy::read(&std::fs::read(out_dir.join("seq").join("1.npy")).expect("seq/1.npy")).expect("npy");
    assert_eq!(e.as_slice::<f32>().expect("f32"), &[2.0]);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("probs.json")).expect("probs.json")).expect("json");
    assert_eq!(json, serde_json::json!([{"10": 0.0, "20": 2.0, "30": 0.0}]));
}

#[test]
fn compile_then_bench_with_profile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "m.onnx", &model(vec![], &[]));
    let plan = dir.path().join("m.kiln");
    let (ok, _, err) = kiln(&["compile", p.to_str().expect("utf8"), "--target", "cpu", "--tune", "off", "-o", plan.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    let t = std::time::Instant::now();
    let (ok, json, err) =
        kiln(&["bench", plan.to_str().expect("utf8"), "--random", "--dim", "batch=4", "--runs", "3", "--json", "--profile", "--pause-ms", "50"]);
    assert!(ok, "{err}");
    // Three timed and three profiled runs, each after 50 ms idle.
    assert!(t.elapsed() >= std::time::Duration::from_millis(300), "{:?}", t.elapsed());
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!((v["runs"].as_u64(), v["pause_ms"].as_u64()), (Some(3), Some(50)));
    let rows = v["profile"]["by_op"].as_array().expect("profile rows");
    // Add then Relu (or one fused step): every step is timed, shares sum to one.
    assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
    let share: f64 = rows.iter().map(|r| r["share"].as_f64().expect("share")).sum();
    assert!((share - 1.0).abs() < 1e-6, "{share}");
    assert!(rows.iter().all(|r| r["ms_per_run"].as_f64().expect("ms") >= 0.0));

    // A model on the reference executor has no steps to time: said, not silently dropped.
    let (ok, out, err) = kiln(&["bench", p.to_str().expect("utf8"), "--random", "--runs", "2", "--profile"]);
    assert!(ok, "{err}");
    assert!(out.contains("compile the model first"), "{out}");
}

/// `--target wgpu --precision fp16`: on an adapter with shader-f16 the report counts the
/// steps stored in f16 per kernel; with the device opened without it (KILN_WGPU_NO_F16=1,
/// the path of adapters that lack it) the compile says fp16 was not applied, names the
/// adapter and the missing feature, and the plan has no f16 step. Without an adapter:
/// skipped (failing under KILN_REQUIRE_GPU_ADAPTER=1).
#[test]
fn fp16_on_wgpu_says_each_steps_precision_or_why_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "m.onnx", &model(vec![], &[]));
    let out = dir.path().join("m16.kiln");
    let args =
        ["compile", p.to_str().expect("utf8"), "--target", "wgpu", "--precision", "fp16", "--tune", "off", "--no-validate", "--no-store"];
    let with_out = |o: &Path, json: bool| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).chain(["-o".into(), o.display().to_string()]).collect();
        if json {
            a.push("--json".into());
        }
        a
    };
    let a = with_out(&out, true);
    let (ok, json, err) = kiln(&a.iter().map(String::as_str).collect::<Vec<_>>());
    if !ok && err.contains("is not available here") {
        assert!(std::env::var("KILN_REQUIRE_GPU_ADAPTER").as_deref() != Ok("1"), "KILN_REQUIRE_GPU_ADAPTER=1 but {err}");
        println!("skipped: {err}");
        return;
    }
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    match v["precision_refused"].as_str() {
        Some(why) => println!("this adapter has no shader-f16: {why}"),
        None => {
            let n = v["precision"]["f16"]["wgpu.elementwise"].as_u64().unwrap_or(0);
            assert!(n >= 1 && v["precision"].get("f32").is_none(), "{}", v["precision"]);
            let manifest = std::fs::read_to_string(out.join("manifest.json")).expect("manifest.json");
            assert!(manifest.contains("\"precision\": \"fp16\""), "{manifest}");
            // The validation report's precision map says f16 for those steps, not their f32
            // plan values' type.
            let (o, m) = (out.to_str().expect("utf8"), p.to_str().expect("utf8"));
            let (ok, _, err) = kiln(&["validate", o, "--model", m, "--runs", "2", "--samples", "1"]);
            assert!(ok, "{err}");
            let report = dir.path().join("m16.kiln.attestations/report/report.json");
            let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report).expect("report.json")).expect("JSON");
            let rows = r["precision_map"].as_array().expect("precision_map");
            let has = |p: &str| rows.iter().any(|row| row["kernel"] == "wgpu.elementwise" && row["precision"] == p);
            assert!(has("f16") && !has("f32"), "{rows:?}");
        }
    }

    let out32 = dir.path().join("m32.kiln");
    let a = with_out(&out32, false);
    let (ok, text, err) = kiln_env(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[("KILN_WGPU_NO_F16", "1")]);
    assert!(ok, "{err}");
    assert!(text.contains("fp16 NOT APPLIED") && text.contains("lacks shader-f16") && text.contains("every layer is f32"), "{text}");
    let plan = std::fs::read_to_string(out32.join("plan.json")).expect("plan.json");
    assert!(!plan.contains("\"f16\""), "an f16 step in the plan compiled without shader-f16");
    let manifest = std::fs::read_to_string(out32.join("manifest.json")).expect("manifest.json");
    assert!(manifest.contains("\"precision\": \"f32\""), "{manifest}");
}
