//! The ONNX backend test data (onnx 1.16.2 wheel, fetched by testdata/fetch.sh) through the
//! ONNX importer and the reference executor.
//!
//! Writes `target/conformance/reference/<suite>.md` (per-op table and every non-passing case)
//! and fails when a case listed in `expected/reference.txt` stops passing.
//! `KILN_BLESS=1` rewrites the expectation file from this run (review the diff).

use kiln_conformance::{Case, Outcome, Report, Status, Tolerance, discover, run_case};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data_dir() -> PathBuf {
    let cache = std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| root().join("testdata/cache"));
    let dir = cache.join("onnx-1.16.2/onnx/backend/test/data");
    assert!(dir.is_dir(), "ONNX test data missing at {}: run `bash testdata/fetch.sh` first", dir.display());
    dir
}

fn run_suite(suite: &str) {
    let cases = discover(&data_dir().join(suite)).expect("read suite folder");
    assert!(!cases.is_empty(), "suite {suite} has no cases");
    let ops = kiln_reference::op_set();
    let run = |m: &kiln_ir::Model, inputs| kiln_reference::run(m, inputs).map_err(|e| e.to_string());
    let queue = Mutex::new(cases.iter());
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let Some(case) = queue.lock().expect("queue").next() else { break };
                    let outcome = run_guarded(case, &ops, &run);
                    results.lock().expect("results").push(outcome);
                }
            });
        }
    });
    let mut outcomes = results.into_inner().expect("results");
    outcomes.sort_by(|a, b| a.case.cmp(&b.case));
    let report = Report { target: format!("reference executor, onnx-1.16.2 {suite}"), outcomes };

    let out_dir = root().join("target/conformance/reference");
    std::fs::create_dir_all(&out_dir).expect("create report dir");
    std::fs::write(out_dir.join(format!("{suite}.md")), report.markdown()).expect("write report");

    let expect_path = root().join("crates/conformance/expected/reference.txt");
    let all_expected: BTreeSet<String> = std::fs::read_to_string(&expect_path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let prefix = format!("{suite}/");
    let expected: BTreeSet<String> = all_expected.iter().filter(|k| k.starts_with(&prefix)).cloned().collect();
    let passing = report.passing_keys();
    println!(
        "conformance {suite}: {} of {} cases pass ({} expected, {} newly passing); table: {}",
        report.passed(),
        report.outcomes.len(),
        expected.len(),
        passing.difference(&expected).count(),
        out_dir.join(format!("{suite}.md")).display()
    );
    if std::env::var_os("KILN_BLESS").is_some() {
        bless(&expect_path, &all_expected, &prefix, &passing);
        return;
    }
    let regressions = report.regressions(&expected);
    let missing: Vec<&String> = expected.iter().filter(|k| !report.outcomes.iter().any(|o| &o.key() == *k)).collect();
    let mut msg = String::new();
    for o in &regressions {
        msg.push_str(&format!("\n  {}: {:?}", o.key(), o.status));
    }
    for k in &missing {
        msg.push_str(&format!("\n  {k}: case not found in the test data"));
    }
    assert!(msg.is_empty(), "{} expected-passing cases of {suite} no longer pass:{msg}", regressions.len() + missing.len());
}

/// Rewrites this suite's lines of the expectation file, keeping the other suites' lines.
fn bless(path: &std::path::Path, all: &BTreeSet<String>, prefix: &str, passing: &BTreeSet<String>) {
    let mut keep: BTreeSet<String> = all.iter().filter(|k| !k.starts_with(prefix)).cloned().collect();
    keep.extend(passing.iter().cloned());
    let mut text = String::from("# Cases the reference executor must keep passing (suite/case). Regenerate: KILN_BLESS=1.\n");
    for k in keep {
        text.push_str(&k);
        text.push('\n');
    }
    std::fs::write(path, text).expect("write expectation file");
}

fn run_guarded(case: &Case, ops: &kiln_ir::OpSet, run: &kiln_conformance::RunFn) -> Outcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case, ops, run, Tolerance::default()))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            Outcome { case: case.name.clone(), suite: case.suite.clone(), op: "?".into(), status: Status::Fail(format!("panicked: {msg}")), seconds: 0.0 }
        }
    }
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
