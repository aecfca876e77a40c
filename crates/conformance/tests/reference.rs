//! The ONNX backend test data (onnx 1.16.2 wheel, fetched by testdata/fetch.sh) through the
//! ONNX importer and the reference executor.
//!
//! Writes `target/conformance/reference/<suite>.md` (per-op table and every non-passing case)
//! and fails when a case listed in `expected/reference.txt` stops passing.
//! `KILN_BLESS=1` rewrites the expectation file from this run (review the diff).

fn run_suite(suite: &str) {
    let run = |m: &kiln_ir::Model, inputs| kiln_reference::run(m, inputs).map_err(|e| e.to_string());
    kiln_conformance::suite::run_suite("reference", suite, &kiln_reference::op_set(), &run);
}

#[test]
fn node() {
    run_suite("node");
}

#[test]
fn simple() {
    run_suite("simple");
}

#[test]
fn pytorch_converted() {
    run_suite("pytorch-converted");
}

#[test]
fn pytorch_operator() {
    run_suite("pytorch-operator");
}

#[test]
fn light() {
    run_suite("light");
}
