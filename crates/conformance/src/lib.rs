//! The ONNX backend node-test suite as data: discover cases, run each through import and an
//! executor, compare with the expected outputs, and tabulate per op.
//!
//! One suite for every target: a target passes its executor as a closure and keeps its own
//! expectation file (the cases it must keep passing).

mod compare;
mod proto_values;
mod table;

pub use compare::{Tolerance, compare};
pub use table::{Outcome, Report, Status};

use kiln_ir::{Model, OpSet};
use kiln_reference::Value;
use std::path::{Path, PathBuf};

/// One test case: a folder with `model.onnx` and `test_data_set_*/`.
#[derive(Clone, Debug)]
pub struct Case {
    pub suite: String,
    pub name: String,
    pub dir: PathBuf,
}

/// The cases of one suite folder (e.g. `.../onnx/backend/test/data/node`), sorted by name.
pub fn discover(suite_dir: &Path) -> std::io::Result<Vec<Case>> {
    let suite = suite_dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut cases = Vec::new();
    for e in std::fs::read_dir(suite_dir)? {
        let e = e?;
        if e.path().join("model.onnx").is_file() {
            cases.push(Case { suite: suite.clone(), name: e.file_name().to_string_lossy().into_owned(), dir: e.path() });
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// Something that runs a model on positional inputs: the reference executor or a target.
pub type RunFn<'a> = dyn Fn(&Model, Vec<(String, Value)>) -> Result<Vec<(String, Value)>, String> + 'a;

/// Runs one case: import with `ops`, run every data set with `run`, compare.
pub fn run_case(case: &Case, ops: &OpSet, run: &RunFn, tol: Tolerance) -> Outcome {
    let started = std::time::Instant::now();
    let status = run_case_inner(case, ops, run, tol);
    let model_ops = kiln_onnx::load(&case.dir.join("model.onnx"), ops)
        .map(|m| m.all_nodes().iter().map(|n| n.qualified_op()).collect::<Vec<_>>())
        .unwrap_or_default();
    Outcome { case: case.name.clone(), suite: case.suite.clone(), op: primary_op(&case.name, &model_ops), status, seconds: started.elapsed().as_secs_f64() }
}

fn run_case_inner(case: &Case, ops: &OpSet, run: &RunFn, tol: Tolerance) -> Status {
    let model_path = case.dir.join("model.onnx");
    let model = match kiln_onnx::load(&model_path, ops) {
        Ok(m) => m,
        Err(e) => return Status::Error(format!("import: {e}")),
    };
    let mut missing: Vec<String> = model.all_nodes().iter().filter(|n| n.unsupported.is_some()).map(|n| n.qualified_op()).collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Status::Unsupported(missing);
    }
    let kinds = match proto_values::io_kinds(&model_path) {
        Ok(k) => k,
        Err(e) => return Status::Error(e),
    };
    let mut sets: Vec<PathBuf> = match std::fs::read_dir(&case.dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
        Err(e) => return Status::Error(e.to_string()),
    };
    sets.sort();
    if sets.is_empty() {
        return Status::Error("no test_data_set_* folder".into());
    }
    for set in sets {
        let inputs = match proto_values::read_numbered(&set, "input", &kinds.inputs) {
            Ok(v) => v,
            Err(e) => return Status::Error(format!("{}: {e}", set.display())),
        };
        let expected = match proto_values::read_numbered(&set, "output", &kinds.outputs) {
            Ok(v) => v,
            Err(e) => return Status::Error(format!("{}: {e}", set.display())),
        };
        // Inputs bind to the graph's runtime inputs in order (the .pb names may be empty).
        let names: Vec<String> = model.graph.runtime_inputs().iter().map(|&i| model.graph.value(i).name.clone()).collect();
        let named: Vec<(String, Value)> = names.into_iter().zip(inputs).collect();
        let got = match run(&model, named) {
            Ok(v) => v,
            Err(e) => return Status::Fail(format!("run: {e}")),
        };
        if got.len() != expected.len() {
            return Status::Fail(format!("{} outputs, expected {}", got.len(), expected.len()));
        }
        for (k, ((name, g), e)) in got.iter().zip(&expected).enumerate() {
            if let Err(why) = compare(g, e, tol) {
                return Status::Fail(format!("output {k} '{name}': {why}"));
            }
        }
    }
    Status::Pass
}

/// The op a case is filed under in the table: the model op whose lowercased name the case
/// name (underscores dropped) starts with, longest match first; else the first op.
fn primary_op(case: &str, ops: &[String]) -> String {
    let bare: String = case.strip_prefix("test_").unwrap_or(case).to_ascii_lowercase().replace('_', "");
    let key = |op: &String| op.rsplit("::").next().unwrap_or(op).to_ascii_lowercase();
    ops.iter()
        .filter(|op| bare.starts_with(&key(op)))
        .max_by_key(|op| key(op).len())
        .or(ops.first())
        .cloned()
        .unwrap_or_else(|| "(none)".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn primary_op_prefers_longest_match() {
        let ops = ["MatMul".to_string(), "MatMulInteger".to_string()];
        assert_eq!(super::primary_op("test_matmulinteger", &ops), "MatMulInteger");
        assert_eq!(super::primary_op("test_reduce_sum_keepdims", &["Cast".into(), "ReduceSum".into()]), "ReduceSum");
    }
}
