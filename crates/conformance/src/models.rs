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
