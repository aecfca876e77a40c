//! Calibration data: .npz samples (stored and deflated members), .npy naming, and the errors.
#![allow(clippy::unwrap_used)]

mod common;

use common::B;
use kiln_ir::Model;
use kiln_quant::{CalibrationSet, DataError};
use kiln_tensor::{Tensor, npy};
use std::io::Write;
use std::path::{Path, PathBuf};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// Inputs `a: f32[N,4]` and `b: f32[3]`.
fn model() -> Model {
    let mut b = B::new(1);
    let a = b.input("a", &["N", "4"]);
    let bb = b.input("b", &["3"]);
    let y = b.op("y", "Add", &[a, bb], vec![]);
    b.output(y, &["N", "4"]);
    b.model()
}

fn a(rows: usize, k: f32) -> Tensor {
    Tensor::from_vec(vec![rows, 4], (0..rows * 4).map(|i| i as f32 + k).collect()).unwrap()
}

fn b3(k: f32) -> Tensor {
    Tensor::from_vec(vec![3], vec![k, k + 1.0, k + 2.0]).unwrap()
}

fn write_npy(path: &Path, t: &Tensor) {
    std::fs::write(path, npy::write(t).unwrap()).unwrap();
}

fn write_npz(path: &Path, members: &[(&str, &Tensor)], method: CompressionMethod) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, t) in members {
        z.start_file(format!("{name}.npy"), SimpleFileOptions::default().compression_method(method)).unwrap();
        z.write_all(&npy::write(t).unwrap()).unwrap();
    }
    z.finish().unwrap();
}

fn read_all(set: &CalibrationSet) -> Vec<Vec<(String, Tensor)>> {
    set.iter().map(|s| s.unwrap().inputs).collect()
}

fn err(r: Result<CalibrationSet, DataError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn npz_samples_stored_and_deflated() {
    let dir = tempfile::tempdir().unwrap();
    write_npz(&dir.path().join("s0.npz"), &[("a", &a(2, 0.0)), ("b", &b3(0.0))], CompressionMethod::Stored);
    write_npz(&dir.path().join("s1.npz"), &[("b", &b3(5.0)), ("a", &a(3, 1.0))], CompressionMethod::Deflated);
    std::fs::write(dir.path().join(".DS_Store"), b"hidden files are skipped").unwrap();
    let set = CalibrationSet::from_dir(dir.path(), &model()).unwrap();
    assert_eq!(set.len(), 2);
    let samples = read_all(&set);
    assert_eq!(samples[0], vec![("a".to_string(), a(2, 0.0)), ("b".to_string(), b3(0.0))]);
    assert_eq!(samples[1], vec![("a".to_string(), a(3, 1.0)), ("b".to_string(), b3(5.0))]);
}

/// A file numpy itself wrote (savez_compressed), when the test venv is there.
#[test]
fn numpy_savez_compressed() {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache/venv/bin/python");
    if !python.is_file() {
        eprintln!("skipped: {} missing", python.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("one.npz");
    let code = "import numpy as np, sys; np.savez_compressed(sys.argv[1], a=np.arange(8, dtype=np.float32).reshape(2, 4), b=np.ones(3, np.float32))";
    let ok = std::process::Command::new(&python).args(["-c", code]).arg(&f).status().unwrap().success();
    assert!(ok);
    let set = CalibrationSet::open(&f, &model()).unwrap();
    let samples = read_all(&set);
    assert_eq!(samples[0][0].1, a(2, 0.0));
    assert_eq!(samples[0][1].1, Tensor::from_vec(vec![3], vec![1.0f32; 3]).unwrap());
}

#[test]
fn npy_files_group_by_number() {
    let dir = tempfile::tempdir().unwrap();
    for n in [0, 1, 10] {
        write_npy(&dir.path().join(format!("a_{n}.npy")), &a(1, n as f32));
        write_npy(&dir.path().join(format!("b_{n}.npy")), &b3(n as f32));
    }
    let set = CalibrationSet::from_dir(dir.path(), &model()).unwrap();
    let names: Vec<String> = set.iter().map(|s| s.unwrap().name).collect();
    assert_eq!(names, ["0", "1", "10"]);
    assert_eq!(read_all(&set)[2][1].1, b3(10.0));
    // The unnumbered form, and a list of files as kiln.toml gives it.
    let one = tempfile::tempdir().unwrap();
    let files = [one.path().join("a.npy"), one.path().join("b.npy")];
    write_npy(&files[0], &a(4, 0.0));
    write_npy(&files[1], &b3(0.0));
    let set = CalibrationSet::from_files(&files, &model()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(read_all(&set)[0][0].1, a(4, 0.0));
}

/// Samples are read when the iterator reaches them, not when the set is made.
#[test]
fn samples_are_read_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..3 {
        write_npz(&dir.path().join(format!("s{n}.npz")), &[("a", &a(1, 0.0)), ("b", &b3(0.0))], CompressionMethod::Deflated);
    }
    let set = CalibrationSet::from_dir(dir.path(), &model()).unwrap();
    std::fs::remove_file(dir.path().join("s2.npz")).unwrap();
    let mut it = set.iter();
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_ok());
    let e = it.next().unwrap().unwrap_err().to_string();
    assert!(e.contains("s2.npz"), "{e}");
}

#[test]
fn errors_name_the_file_and_the_way_out() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let e = err(CalibrationSet::from_dir(p, &m));
    assert!(e.contains("no calibration samples") && e.contains("a, b") && e.contains("<input>_<n>.npy"), "{e}");
    let e = err(CalibrationSet::from_files(&[], &m));
    assert!(e.contains("the list of calibration files holds no calibration samples"), "{e}");

    write_npy(&p.join("a_2.npy"), &a(1, 0.0));
    let set = CalibrationSet::from_dir(p, &m).unwrap();
    let e = set.iter().next().unwrap().unwrap_err().to_string();
    assert!(e.contains("sample '2' lacks input 'b'") && e.contains("b_2.npy"), "{e}");

    write_npy(&p.join("b_2.npy"), &Tensor::from_vec(vec![3], vec![1.0f64, 2.0, 3.0]).unwrap());
    let set = CalibrationSet::from_dir(p, &m).unwrap();
    let e = set.iter().next().unwrap().unwrap_err().to_string();
    assert!(e.contains("b_2.npy") && e.contains("f64") && e.contains("save it as f32"), "{e}");

    write_npy(&p.join("b_2.npy"), &b3(0.0));
    write_npy(&p.join("a_2.npy"), &Tensor::from_vec(vec![1, 5], vec![0.0f32; 5]).unwrap());
    let set = CalibrationSet::from_dir(p, &m).unwrap();
    let e = set.iter().next().unwrap().unwrap_err().to_string();
    assert!(e.contains("a_2.npy") && e.contains("[1, 5]") && e.contains("[N,4]"), "{e}");

    write_npy(&p.join("c_0.npy"), &b3(0.0));
    let e = err(CalibrationSet::from_dir(p, &m));
    assert!(e.contains("c_0.npy") && e.contains("'c_0' is not an input"), "{e}");
    std::fs::remove_file(p.join("c_0.npy")).unwrap();

    write_npy(&p.join("a_02.npy"), &a(1, 0.0));
    let e = err(CalibrationSet::from_dir(p, &m));
    assert!(e.contains("a_2.npy") && e.contains("already gives input 'a'"), "{e}");
    std::fs::remove_file(p.join("a_02.npy")).unwrap();

    write_npz(&p.join("s.npz"), &[("a", &a(1, 0.0)), ("b", &b3(0.0))], CompressionMethod::Stored);
    let e = err(CalibrationSet::from_dir(p, &m));
    assert!(e.contains("mixes .npz samples with .npy files"), "{e}");
    std::fs::remove_file(p.join("s.npz")).unwrap();

    std::fs::write(p.join("notes.txt"), "x").unwrap();
    let e = err(CalibrationSet::from_dir(p, &m));
    assert!(e.contains("notes.txt") && e.contains(".npz or .npy"), "{e}");
    std::fs::remove_file(p.join("notes.txt")).unwrap();

    std::fs::create_dir(p.join("more")).unwrap();
    let e = err(CalibrationSet::from_dir(p, &m));
    assert!(e.contains("more") && e.contains("sub-folders"), "{e}");
}

#[test]
fn npz_errors() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.npz");
    write_npz(&f, &[("a", &a(1, 0.0)), ("b", &b3(0.0)), ("extra", &b3(0.0))], CompressionMethod::Deflated);
    let set = CalibrationSet::open(&f, &m).unwrap();
    let e = set.iter().next().unwrap().unwrap_err().to_string();
    assert!(e.contains("s.npz") && e.contains("'extra' is not an input"), "{e}");

    write_npz(&f, &[("a", &a(1, 0.0))], CompressionMethod::Stored);
    let e = set.iter().next().unwrap().unwrap_err().to_string();
    assert!(e.contains("lacks input 'b'") && e.contains("numpy.savez(file, b=array)"), "{e}");

    std::fs::write(&f, b"not a zip").unwrap();
    let e = set.iter().next().unwrap().unwrap_err().to_string();
    assert!(e.contains("s.npz") && e.contains("not a readable .npz"), "{e}");
}

#[test]
fn a_name_fitting_two_inputs_is_refused() {
    let mut b = B::new(1);
    let x = b.input("x", &["2"]);
    let x1 = b.input("x_1", &["2"]);
    let y = b.op("y", "Add", &[x, x1], vec![]);
    b.output(y, &["2"]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x_1.npy");
    write_npy(&f, &b3(0.0));
    let e = err(CalibrationSet::from_files(&[f], &b.model()));
    assert!(e.contains("x_1.npy") && e.contains("'x' and 'x_1'") && e.contains(".npz"), "{e}");
}
