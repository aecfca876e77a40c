//! The real-model reference data written by `testdata/ort_reference.py` into
//! `testdata/cache/ort/<model-id>/` (`model.txt`, `input_<name>.npy`, `output_<name>.npy`).

use kiln_tensor::Tensor;
use std::path::{Path, PathBuf};

pub const HOW_TO_FETCH: &str = "run bash ci/test.sh (or testdata/fetch.sh + testdata/ort_reference.py)";

/// `$KILN_TESTDATA`, else the workspace's `testdata/cache`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"))
}

/// The file-name form of a value name (the rule of `sanitize` in testdata/ort_reference.py).
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' }).collect()
}

pub fn read_npy(path: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}; {HOW_TO_FETCH}", path.display()))?;
    kiln_tensor::npy::read(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The model path and the folder of its reference data.
pub fn ort_case(model_id: &str) -> Result<(PathBuf, PathBuf), String> {
    let cache = cache_dir();
    let dir = cache.join("ort").join(model_id);
    let txt = dir.join("model.txt");
    let rel = std::fs::read_to_string(&txt).map_err(|e| format!("{model_id}: reference data missing ({}: {e}); {HOW_TO_FETCH}", txt.display()))?;
    let path = cache.join(rel.trim());
    if !path.is_file() {
        return Err(format!("{model_id}: model missing at {}; {HOW_TO_FETCH}", path.display()));
    }
    Ok((path, dir))
}

/// Max |got - want| and max |want| (finite values) over float tensors of the same shape.
pub fn max_abs_diff(got: &Tensor, want: &Tensor) -> Result<(f64, f64), String> {
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        return Err(format!("got {}{:?}, expected {}{:?}", got.dtype(), got.shape(), want.dtype(), want.shape()));
    }
    let (g, w) = (got.to_f64_vec().map_err(|e| e.to_string())?, want.to_f64_vec().map_err(|e| e.to_string())?);
    let mut diff: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for (&a, &b) in g.iter().zip(&w) {
        let d = if (a.is_nan() && b.is_nan()) || a == b { 0.0 } else { (a - b).abs() };
        diff = diff.max(if d.is_nan() { f64::INFINITY } else { d });
        if b.is_finite() {
            scale = scale.max(b.abs());
        }
    }
    Ok((diff, scale))
}

/// A model's reference run: its path, the onnxruntime reference inputs, and the reference
/// executor's outputs on them (what target model tests compare against).
pub type ReferenceRun = (PathBuf, Vec<(String, Tensor)>, Vec<(String, kiln_reference::Value)>);

pub fn reference_run(model_id: &str) -> Result<ReferenceRun, String> {
    let (path, dir) = ort_case(model_id)?;
    let model = kiln_onnx::load(&path, &kiln_reference::op_set()).map_err(|e| format!("{model_id}: import failed: {e}"))?;
    let g = &model.graph;
    let mut inputs = Vec::new();
    for &v in &g.runtime_inputs() {
        let name = g.value(v).name.clone();
        let t = read_npy(&dir.join(format!("input_{}.npy", sanitize(&name))))?;
        inputs.push((name, t));
    }
    let feeds = inputs.iter().map(|(n, t)| (n.clone(), kiln_reference::Value::Tensor(t.clone()))).collect();
    let want = kiln_reference::run(&model, feeds).map_err(|e| format!("{model_id}: reference run failed: {e}"))?;
    Ok((path, inputs, want))
}

/// Compares a target's outputs with the reference executor's: floats within `rel` x
/// max(1, max |reference|), integers and bools exact. Prints each float output's error; returns
/// the failures (empty when all agree). `who` names the target in the messages.
pub fn compare_to_reference(model_id: &str, who: &str, got: &[(String, Tensor)], want: &[(String, kiln_reference::Value)], rel: f64) -> Vec<String> {
    let mut failures = Vec::new();
    if got.len() != want.len() {
        failures.push(format!("{} outputs, the reference has {}", got.len(), want.len()));
    }
    for ((name, g), (_, w)) in got.iter().zip(want) {
        let kiln_reference::Value::Tensor(w) = w else { continue };
        if !w.dtype().is_float() {
            if g != w {
                failures.push(format!("output '{name}': integer/bool values differ"));
            }
            continue;
        }
        match max_abs_diff(g, w) {
            Ok((diff, scale)) => {
                let bound = rel * scale.max(1.0);
                println!("{model_id}: output '{name}': max |{who} - reference| = {diff:.3e} (bound {bound:.3e}, rel {:.3e})", diff / scale.max(1.0));
                if diff > bound {
                    failures.push(format!("output '{name}': {diff:.3e} exceeds {bound:.3e}"));
                }
            }
            Err(e) => failures.push(format!("output '{name}': {e}")),
        }
    }
    failures
}
