//! The ONNX backend node-test suite as data: discover cases, run each through import and an
//! executor, compare with the expected outputs, and tabulate per op.
//!
//! One suite for every target: a target passes its executor as a closure and keeps its own
//! expectation file (the cases it must keep passing).

mod compare;
pub mod models;
pub mod single_op;
mod proto_values;
pub mod suite;
mod table;

pub use compare::{Tolerance, compare};
pub use table::{Outcome, Report, Status};

use kiln_ir::{Model, OpSet};
use kiln_reference::Value;
use std::path::{Path, PathBuf};

/// One test case.
#[derive(Clone, Debug)]
pub struct Case {
    pub suite: String,
    pub name: String,
    pub model: PathBuf,
    pub data: CaseData,
}

/// Where a case's inputs and expected outputs come from.
#[derive(Clone, Debug)]
pub enum CaseData {
    /// `test_data_set_*/{input,output}_N.pb` folders beside `model.onnx`.
    Sets(Vec<PathBuf>),
    /// The `light` models: no input files; each float input is `arange(n).reshape(shape) / n`
    /// (unknown dims taken as 1), as the ONNX backend runner generates it, and the expected
    /// outputs are `<model>_output_N.pb`.
    Generated(Vec<PathBuf>),
}

/// The cases of one suite folder (e.g. `.../onnx/backend/test/data/node`), sorted by name.
/// Folders holding `model.onnx` are cases; so is each loose `NAME.onnx` with `NAME_output_N.pb`.
pub fn discover(suite_dir: &Path) -> std::io::Result<Vec<Case>> {
    let suite = suite_dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut cases = Vec::new();
    for e in std::fs::read_dir(suite_dir)? {
        let path = e?.path();
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if path.join("model.onnx").is_file() {
            let mut sets: Vec<PathBuf> = std::fs::read_dir(&path)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
            sets.sort();
            cases.push(Case { suite: suite.clone(), name, model: path.join("model.onnx"), data: CaseData::Sets(sets) });
        } else if let Some(stem) = name.strip_suffix(".onnx") {
            let outputs: Vec<PathBuf> =
                (0..).map(|i| suite_dir.join(format!("{stem}_output_{i}.pb"))).take_while(|p| p.is_file()).collect();
            cases.push(Case { suite: suite.clone(), name: stem.to_string(), model: path.clone(), data: CaseData::Generated(outputs) });
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// Something that runs a model on positional inputs: the reference executor or a target.
pub type RunFn<'a> = dyn Fn(&Model, Vec<(String, Value)>) -> Result<Vec<(String, Value)>, String> + Sync + 'a;

/// Runs one case: import with `ops`, run every data set with `run`, compare.
pub fn run_case(case: &Case, ops: &OpSet, run: &RunFn, tol: Tolerance) -> Outcome {
    let started = std::time::Instant::now();
    let status = run_case_inner(case, ops, run, tol);
    let model_ops = kiln_onnx::load(&case.model, ops)
        .map(|m| m.all_nodes().iter().map(|n| n.qualified_op()).collect::<Vec<_>>())
        .unwrap_or_default();
    Outcome { case: case.name.clone(), suite: case.suite.clone(), op: primary_op(&case.name, &model_ops), status, seconds: started.elapsed().as_secs_f64() }
}

fn run_case_inner(case: &Case, ops: &OpSet, run: &RunFn, tol: Tolerance) -> Status {
    let model = match kiln_onnx::load(&case.model, ops) {
        Ok(m) => m,
        Err(e) => return Status::Error(format!("import: {e}")),
    };
    let mut missing: Vec<String> = model.all_nodes().iter().filter(|n| n.unsupported.is_some()).map(|n| n.qualified_op()).collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Status::Unsupported(missing);
    }
    let kinds = match proto_values::io_kinds(&case.model) {
        Ok(k) => k,
        Err(e) => return Status::Error(e),
    };
    let data_sets: Vec<(Vec<Value>, Vec<Value>)> = match &case.data {
        CaseData::Sets(sets) if sets.is_empty() => return Status::Error("no test_data_set_* folder".into()),
        CaseData::Sets(sets) => {
            let mut out = Vec::new();
            for set in sets {
                let read = |prefix, kinds| proto_values::read_numbered(set, prefix, kinds).map_err(|e| format!("{}: {e}", set.display()));
                match (read("input", &kinds.inputs), read("output", &kinds.outputs)) {
                    (Ok(i), Ok(o)) => {
                        let g = &model.graph;
                        let declared = |ids: Vec<kiln_ir::ValueId>| ids.into_iter().map(|v| g.value(v).dtype).collect::<Vec<_>>();
                        out.push((bf16_from_bits(i, &declared(g.runtime_inputs())), bf16_from_bits(o, &declared(g.outputs.clone()))))
                    }
                    (Err(e), _) | (_, Err(e)) => return Status::Error(e),
                }
            }
            out
        }
        CaseData::Generated(outputs) => {
            let mut expected = Vec::new();
            for p in outputs {
                match std::fs::read(p).map_err(|e| e.to_string()).and_then(|b| kiln_onnx::read_tensor_file(&b).map_err(|e| e.to_string())) {
                    Ok((_, t)) => expected.push(Value::Tensor(t)),
                    Err(e) => return Status::Error(format!("{}: {e}", p.display())),
                }
            }
            match generated_inputs(&model) {
                Ok(inputs) => vec![(inputs, expected)],
                Err(e) => return Status::Error(e),
            }
        }
    };
    for (inputs, expected) in data_sets {
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

/// The ONNX test data stores bfloat16 tensors as UINT16 bit patterns; where the model declares
/// bf16, read those bits as bf16.
fn bf16_from_bits(values: Vec<Value>, declared: &[Option<kiln_tensor::DType>]) -> Vec<Value> {
    use kiln_tensor::{DType, Tensor, bf16};
    values
        .into_iter()
        .enumerate()
        .map(|(k, v)| match v {
            Value::Tensor(t) if declared.get(k).copied().flatten() == Some(DType::BF16) => {
                let converted = t.as_slice::<u16>().ok().and_then(|bits| {
                    Tensor::from_vec(t.shape().to_vec(), bits.iter().map(|&b| bf16::from_bits(b)).collect()).ok()
                });
                Value::Tensor(converted.unwrap_or(t))
            }
            v => v,
        })
        .collect()
}

/// `arange(n).reshape(shape) / n` as f32 for each runtime input (unknown dims are 1).
fn generated_inputs(model: &Model) -> Result<Vec<Value>, String> {
    let g = &model.graph;
    g.runtime_inputs()
        .iter()
        .map(|&i| {
            let info = g.value(i);
            if info.dtype != Some(kiln_tensor::DType::F32) {
                return Err(format!("input '{}' is not f32; generated data is f32 only", info.name));
            }
            let shape: Vec<usize> = info.shape.as_ref().map_or(Vec::new(), |s| s.0.iter().map(|d| d.known().unwrap_or(1)).collect());
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|k| (k as f64 / n as f64) as f32).collect();
            kiln_tensor::Tensor::from_vec(shape, v).map(Value::Tensor).map_err(|e| e.to_string())
        })
        .collect()
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
