//! The compiled plan: the versioned format between Kiln's compiler and its runtime.
//!
//! A plan directory holds `plan.json` (this schema) and `weights.bin` (every weight blob,
//! pre-packed in the layout its kernel wants, at the offsets the plan names).

use crate::{KILN_VERSION, TargetError, TargetId};
use kiln_tensor::{DType, Dim};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped on any change a reader must know about; readers refuse newer plans.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// A dimension: known, or named and bound when the plan runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DimSpec {
    Known(usize),
    Sym(String),
}

impl From<&Dim> for DimSpec {
    fn from(d: &Dim) -> DimSpec {
        match d {
            Dim::Known(n) => DimSpec::Known(*n),
            Dim::Sym(s) => DimSpec::Sym(s.clone()),
        }
    }
}

impl DimSpec {
    /// The size under `dims`, if bound.
    pub fn resolve(&self, dims: &BTreeMap<String, usize>) -> Option<usize> {
        match self {
            DimSpec::Known(n) => Some(*n),
            DimSpec::Sym(s) => dims.get(s).copied(),
        }
    }
}

/// A tensor the plan reads or writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanValue {
    pub name: String,
    /// Element type name ("f32", "i64", ...).
    pub dtype: String,
    /// None when the compiler could not infer it (the runtime then learns it per call).
    pub shape: Option<Vec<DimSpec>>,
    /// Index into `Plan::weights` when the value is a constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<usize>,
}

impl PlanValue {
    pub fn dtype(&self) -> Option<DType> {
        DType::from_name(&self.dtype)
    }
}

/// The step attribute naming the float type a step stores its floats in on its device
/// ("f16"), where a target computes below the model's f32 (the wgpu target under
/// `CompileOptions::float`); transfers carry it for the device side they convert.
pub const PRECISION_ATTR: &str = "precision";

/// The step attribute a target puts beside [`PRECISION_ATTR`] when a layer does not run
/// where or how the user asked (the wgpu target's int8 layers, left on its CPU part), saying
/// why, for the compile report.
pub const PRECISION_NOTE_ATTR: &str = "precision_note";

/// A node attribute in plan form. Tensors live in the weight blob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrValue {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    String(String),
    Strings(Vec<String>),
    /// Index into `Plan::weights`.
    Tensor(usize),
}

/// GPU launch geometry (unused by the CPU target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_bytes: u32,
}

/// One kernel invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The IR node it came from (for reports and errors).
    pub node: String,
    /// The IR op type (`Conv`, `FusedConv`, ...).
    pub op: String,
    /// The op's domain (`""` is ai.onnx, `"kiln"` Kiln's fused ops).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The kernel that runs it (`cpu.gemm`, `reference`, ...).
    pub kernel: String,
    /// The chosen candidate of that kernel (tuning decides; `default` when untuned).
    pub variant: String,
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<Option<usize>>,
    #[serde(default)]
    pub attrs: BTreeMap<String, AttrValue>,
    /// Opset of the op's domain, for kernels whose semantics depend on it.
    #[serde(default)]
    pub opset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

/// A weight blob in `weights.bin`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightRef {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    /// "row-major", or a packed layout a kernel defines ("gemm-packed-b").
    pub layout: String,
    pub offset: u64,
    pub bytes: u64,
}

/// A compiled model for one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schema_version: u32,
    pub kiln_version: String,
    pub target: TargetId,
    pub values: Vec<PlanValue>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub steps: Vec<Step>,
    pub weights: Vec<WeightRef>,
}

impl Plan {
    pub fn new(target: TargetId) -> Plan {
        Plan {
            schema_version: PLAN_SCHEMA_VERSION,
            kiln_version: KILN_VERSION.to_string(),
            target,
            values: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            steps: Vec::new(),
            weights: Vec::new(),
        }
    }

    /// Steps that carry a [`PRECISION_ATTR`], counted per precision and kernel, for reports
    /// (empty when no step says: every value then has its own type, f32 for floats).
    pub fn precision_histogram(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut h: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for s in &self.steps {
            if let Some(AttrValue::String(p)) = s.attrs.get(PRECISION_ATTR) {
                *h.entry(p.clone()).or_default().entry(s.kernel.clone()).or_insert(0) += 1;
            }
        }
        h
    }

    /// Steps with a [`PRECISION_NOTE_ATTR`]: each note and the nodes it is on, for reports.
    pub fn precision_notes(&self) -> BTreeMap<String, Vec<String>> {
        let mut h: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &self.steps {
            if let Some(AttrValue::String(n)) = s.attrs.get(PRECISION_NOTE_ATTR) {
                h.entry(n.clone()).or_default().push(s.node.clone());
            }
        }
        h
    }

    /// Step count per kernel, for reports.
    pub fn kernel_histogram(&self) -> BTreeMap<String, usize> {
        let mut h = BTreeMap::new();
        for s in &self.steps {
            *h.entry(s.kernel.clone()).or_insert(0) += 1;
        }
        h
    }
}

fn io(path: &Path, source: std::io::Error) -> TargetError {
    TargetError::Io { path: path.display().to_string(), source }
}

/// Writes `plan.json` and `weights.bin` into `dir` atomically: everything goes into a sibling
/// temporary folder that is renamed over `dir` only when complete, so an interrupted write never
/// leaves something that looks like a plan.
pub fn write_plan(dir: &Path, plan: &Plan, weights: &[u8]) -> Result<(), TargetError> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into());
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let json = serde_json::to_vec_pretty(plan).map_err(|e| TargetError::Plan { path: dir.display().to_string(), reason: e.to_string() })?;
    let result = (|| {
        std::fs::write(tmp.join("plan.json"), &json).map_err(|e| io(&tmp.join("plan.json"), e))?;
        std::fs::write(tmp.join("weights.bin"), weights).map_err(|e| io(&tmp.join("weights.bin"), e))?;
        if dir.exists() {
            if !dir.join("plan.json").exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
                return Err(TargetError::Plan {
                    path: dir.display().to_string(),
                    reason: "exists and is not a Kiln plan folder; refusing to replace it".into(),
                });
            }
            std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Reads a plan folder, refusing plans from a newer schema and weight references that do not
/// fit the blob.
pub fn read_plan(dir: &Path) -> Result<(Plan, Vec<u8>), TargetError> {
    let bad = |reason: String| TargetError::Plan { path: dir.display().to_string(), reason };
    let json_path = dir.join("plan.json");
    let json = std::fs::read(&json_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad("no plan.json here: is this a folder written by `kiln compile`?".into())
        } else {
            io(&json_path, e)
        }
    })?;
    let version: serde_json::Value = serde_json::from_slice(&json).map_err(|e| bad(format!("plan.json is not valid JSON: {e}")))?;
    let v = version.get("schema_version").and_then(|v| v.as_u64()).unwrap_or(0);
    if v > u64::from(PLAN_SCHEMA_VERSION) {
        return Err(bad(format!("plan schema {v} is newer than this Kiln reads ({PLAN_SCHEMA_VERSION}); upgrade Kiln")));
    }
    let plan: Plan = serde_json::from_value(version).map_err(|e| bad(format!("plan.json does not match the plan schema: {e}")))?;
    let weights = std::fs::read(dir.join("weights.bin")).map_err(|e| io(&dir.join("weights.bin"), e))?;
    for w in &plan.weights {
        if w.offset.checked_add(w.bytes).is_none_or(|end| end > weights.len() as u64) {
            return Err(bad(format!("weight '{}' ({} bytes at {}) runs past weights.bin ({} bytes)", w.name, w.bytes, w.offset, weights.len())));
        }
    }
    let n = plan.values.len();
    let bad_ref = plan.steps.iter().flat_map(|s| s.inputs.iter().chain(&s.outputs).flatten()).chain(&plan.inputs).chain(&plan.outputs).find(|&&i| i >= n);
    if let Some(i) = bad_ref {
        return Err(bad(format!("a step refers to value {i}, but the plan has {n} values")));
    }
    Ok((plan, weights))
}
