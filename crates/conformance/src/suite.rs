//! Running a whole suite for one target: the shared body of every target's conformance test.

use crate::{Case, Outcome, Report, RunFn, Status, Tolerance, discover, run_case};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn data_dir() -> PathBuf {
    let cache = std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| root().join("testdata/cache"));
    let dir = cache.join("onnx-1.16.2/onnx/backend/test/data");
    assert!(dir.is_dir(), "ONNX test data missing at {}: run `bash testdata/fetch.sh` first", dir.display());
    dir
}

/// Runs one suite of the onnx-1.16.2 test data on `target` (import with `ops`, execute with
/// `run`), writes `target/conformance/<target>/<suite>.md`, and panics when a case listed in
/// `expected/<target>.txt` no longer passes. Cases in `expected/<target>-skip.txt` (one
/// `suite/case  reason` per line) are not run and are reported as skipped with their reason.
/// `KILN_BLESS=1` rewrites the expectation file instead.
pub fn run_suite(target: &str, suite: &str, ops: &kiln_ir::OpSet, run: &RunFn) {
    let cases = discover(&data_dir().join(suite)).expect("read suite folder");
    assert!(!cases.is_empty(), "suite {suite} has no cases");
    let skips = read_skips(&root().join(format!("crates/conformance/expected/{target}-skip.txt")));
    let (skipped, cases): (Vec<Case>, Vec<Case>) = cases.into_iter().partition(|c| skips.contains_key(&format!("{}/{}", c.suite, c.name)));
    let queue = Mutex::new(cases.iter());
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let Some(case) = queue.lock().expect("queue").next() else { break };
                    let outcome = run_guarded(case, ops, run);
                    results.lock().expect("results").push(outcome);
                }
            });
        }
    });
    let mut outcomes = results.into_inner().expect("results");
    for c in skipped {
        let reason = skips.get(&format!("{}/{}", c.suite, c.name)).cloned().unwrap_or_default();
        outcomes.push(Outcome { case: c.name, suite: c.suite, op: "(skipped)".into(), status: Status::Skipped(reason), seconds: 0.0 });
    }
    outcomes.sort_by(|a, b| a.case.cmp(&b.case));
    let report = Report { target: format!("{target}, onnx-1.16.2 {suite}"), outcomes };

    let out_dir = root().join(format!("target/conformance/{target}"));
    std::fs::create_dir_all(&out_dir).expect("create report dir");
    std::fs::write(out_dir.join(format!("{suite}.md")), report.markdown()).expect("write report");

    let expect_path = root().join(format!("crates/conformance/expected/{target}.txt"));
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
        bless(target, &expect_path, &all_expected, &prefix, &passing);
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
fn bless(target: &str, path: &std::path::Path, all: &BTreeSet<String>, prefix: &str, passing: &BTreeSet<String>) {
    let mut keep: BTreeSet<String> = all.iter().filter(|k| !k.starts_with(prefix)).cloned().collect();
    keep.extend(passing.iter().cloned());
    let mut text = format!("# Cases the {target} target must keep passing (suite/case). Regenerate: KILN_BLESS=1.\n");
    for k in keep {
        text.push_str(&k);
        text.push('\n');
    }
    std::fs::write(path, text).expect("write expectation file");
}

/// `suite/case  reason` lines; `#` starts a comment line.
fn read_skips(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_string(), r.trim().to_string()),
            None => (l.to_string(), "no reason given".to_string()),
        })
        .collect()
}

fn run_guarded(case: &Case, ops: &kiln_ir::OpSet, run: &RunFn) -> Outcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case, ops, run, Tolerance::default()))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            Outcome { case: case.name.clone(), suite: case.suite.clone(), op: "?".into(), status: Status::Fail(format!("panicked: {msg}")), seconds: 0.0 }
        }
    }
}

