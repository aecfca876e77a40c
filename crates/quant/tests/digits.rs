//! End to end on the scikit-learn digits MLP (testdata/cache/sklearn): calibration data streamed
//! from .npy files, every calibration method, static and dynamic int8 against f32 on the
//! reference executor, the int8 weights' size, and the exported QDQ file in onnxruntime.
#![allow(clippy::unwrap_used)]

mod common;

use common::run;
use kiln_ir::Model;
use kiln_quant::{CalibMethod, QDType, QuantOptions, quantize};
use kiln_tensor::{DType, Tensor, npy};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The model and its 20 input rows, or None (with a note) when the test data is not fetched.
fn digits() -> Option<(Model, Tensor)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache/sklearn");
    let (model, x) = (dir.join("digits-mlp.onnx"), dir.join("digits-mlp.X.npy"));
    if !model.is_file() || !x.is_file() {
        eprintln!("skipped: {} missing (testdata/sklearn_models.py writes it)", model.display());
        return None;
    }
    let m = kiln_onnx::load(&model, &kiln_reference::op_set()).unwrap();
    Some((m, npy::read(&std::fs::read(x).unwrap()).unwrap()))
}

fn rows(x: &Tensor) -> Vec<Tensor> {
    let [n, k] = x.shape() else { panic!("X is {:?}", x.shape()) };
    let v = x.as_slice::<f32>().unwrap();
    (0..*n).map(|i| Tensor::from_vec(vec![1, *k], v[i * k..(i + 1) * k].to_vec()).unwrap()).collect()
}

fn argmax_rows(p: &Tensor) -> Vec<usize> {
    let v = p.as_slice::<f32>().unwrap();
    let c = p.shape()[1];
    v.chunks(c).map(|r| (0..c).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap()).collect()
}

fn agreement(want: &BTreeMap<String, Tensor>, got: &BTreeMap<String, Tensor>) -> (usize, f32) {
    let (w, g) = (&want["probabilities"], &got["probabilities"]);
    let same = argmax_rows(w).iter().zip(argmax_rows(g)).filter(|(a, b)| **a == *b).count();
    let d = common::max_diff(g, w).0;
    assert_eq!(want["label"], got["label"], "labels differ");
    (same, d)
}

#[test]
fn int8_digits_mlp_agrees_with_f32() {
    let Some((model, x)) = digits() else { return };
    let n = x.shape()[0];
    let calib = tempfile::tempdir().unwrap();
    for (i, r) in rows(&x).iter().enumerate() {
        std::fs::write(calib.path().join(format!("X_{i}.npy")), npy::write(r).unwrap()).unwrap();
    }
    let want = run(&model, &[("X", x.clone())]);
    let opts = QuantOptions::default();
    let methods =
        [CalibMethod::MinMax, CalibMethod::Percentile { percentile: 99.99, symmetric: false }, CalibMethod::Entropy { symmetric: false }];
    for method in methods {
        let ranges = common::reference_calibrate(&model, &opts, method, calib.path());
        assert_eq!(ranges.samples, n as u64);
        let (q, summary) = quantize(&model, &opts, Some(&ranges)).unwrap();
        assert_eq!(summary.nodes.len(), 2, "{summary}");
        let (same, d) = agreement(&want, &run(&q, &[("X", x.clone())]));
        eprintln!("static {method}: argmax equal on {same}/{n} rows, max |p - p_f32| {d:.4}");
        assert_eq!(same, n);
        assert!(d < 0.05, "static {method}: probabilities differ by {d}");
    }
    let (q, summary) = quantize(&model, &opts, None).unwrap();
    assert!(summary.data_free);
    let (same, d) = agreement(&want, &run(&q, &[("X", x.clone())]));
    eprintln!("dynamic: argmax equal on {same}/{n} rows, max |p - p_f32| {d:.4}");
    assert_eq!(same, n);
    assert!(d < 0.05, "dynamic: probabilities differ by {d}");
}

/// The MatMul weights are stored as int8: their bytes drop 4x, the float copies are gone.
#[test]
fn int8_weights_are_stored() {
    let Some((model, _)) = digits() else { return };
    let (q, summary) = quantize(&model, &QuantOptions::default(), None).unwrap();
    let g = &q.graph;
    let by_name = |name: &str| g.initializers.iter().find(|(v, _)| g.value(**v).name == name).map(|(_, t)| t);
    for (w, shape) in [("coefficient", [64, 32]), ("coefficient1", [32, 10])] {
        assert!(by_name(w).is_none(), "float {w} is still there");
        let t = by_name(&format!("{w}_quantized")).unwrap();
        assert_eq!((t.dtype(), t.shape()), (DType::I8, &shape[..]));
        let float_bytes = DType::F32.storage_bytes(t.len());
        assert_eq!(t.dtype().storage_bytes(t.len()) * 4, float_bytes);
    }
    let ratio = summary.weight_bytes_before as f64 / summary.weight_bytes_after as f64;
    eprintln!("digits MLP initializers: {} -> {} bytes ({ratio:.2}x)", summary.weight_bytes_before, summary.weight_bytes_after);
    assert!(ratio > 3.0, "{summary}");
}

/// The exported QDQ model passes onnx.checker and runs in onnxruntime, giving what the reference
/// executor gives for the same graph (and f32's labels).
#[test]
fn exported_qdq_runs_in_onnxruntime() {
    let Some((model, x)) = digits() else { return };
    let calib = tempfile::tempdir().unwrap();
    std::fs::write(calib.path().join("X.npy"), npy::write(&x).unwrap()).unwrap();
    let want = run(&model, &[("X", x.clone())]);
    for activation in [Some(QDType::U8), Some(QDType::I8), None] {
        let opts = QuantOptions { activation: activation.unwrap_or(QDType::U8), ..QuantOptions::default() };
        let ranges = activation.map(|_| common::reference_calibrate(&model, &opts, CalibMethod::MinMax, calib.path()));
        let (q, _) = quantize(&model, &opts, ranges.as_ref()).unwrap();
        let Some(ort) = common::ort_run(&q, &[("X", x.clone())]) else { return };
        let ours = run(&q, &[("X", x.clone())]);
        let d = common::max_diff(&ort["probabilities"], &ours["probabilities"]).0;
        eprintln!("{activation:?}: onnxruntime vs reference on the QDQ graph: max |diff| {d:.2e}");
        assert!(d < 1e-4, "{activation:?}: onnxruntime and the reference differ by {d}");
        assert_eq!(ort["label"], want["label"], "{activation:?}: onnxruntime's labels differ from f32's");
    }
}
