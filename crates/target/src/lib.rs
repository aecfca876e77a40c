//! What every hardware target implements, and the compiled plan it produces.
//!
//! A [`Target`] probes for its device, says which ops it lowers natively, lowers an optimized
//! graph to a [`Plan`] (kernels, operands, launch parameters, weight layouts), tunes kernel
//! candidates through a [`Tuner`], loads a plan into an [`Executable`], and estimates cost when
//! no device is present. The plan is the versioned boundary between compiler and runtime.
//!
//! Architecture invariant: this crate knows nothing of any vendor (no CPU features, no CUDA,
//! no wgpu), of ONNX, of files other than the plan and tuning-cache formats, or of the CLI.

mod error;
mod memory;
mod plan;
mod tune;

pub use error::TargetError;
pub use memory::{MemoryPlan, memory_plan};
pub use plan::{AttrValue, DimSpec, Launch, PLAN_SCHEMA_VERSION, PRECISION_ATTR, PRECISION_NOTE_ATTR, Plan, PlanValue, Step, WeightRef, read_plan, write_plan};
pub use tune::{CandidateTiming, TuneCache, TuneDecision, TuneKey, TuneMode, TuneRecord, Tuner};

use kiln_ir::{Model, OpSet};
use kiln_tensor::Tensor;
use std::collections::BTreeMap;
use std::time::Duration;

/// The version written into plans and tuning records.
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which target, and on which device, a plan was built for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TargetId {
    /// "cpu", "wgpu", "cuda", "rocm".
    pub kind: String,
    /// The device as the target describes it (CPU model and features, GPU name and arch).
    pub device: String,
    /// What tuning records are keyed by: stable for one device kind and driver.
    pub fingerprint: String,
}

/// Whether a target can run here.
#[derive(Clone, Debug, PartialEq)]
pub enum Availability {
    Available { device: String },
    /// Not here; `remedy` says what would make it available.
    Unavailable { reason: String, remedy: String },
}

/// How a compile runs.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    pub tune: TuneMode,
    /// Wall-clock budget for measuring candidates (the whole compile).
    pub tune_budget: Duration,
    /// Where tuning records persist; None keeps them in memory only.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Threads the plan may use (None: all cores).
    pub threads: Option<usize>,
    /// Values bound for symbolic dims when tuning shapes (e.g. batch=1, seq=128).
    pub dims: BTreeMap<String, usize>,
    /// Concrete shapes of values (by name) with `dims` bound, where shape inference could
    /// derive them: the sizes kernels are tuned for. The pipeline fills this from `dims`
    /// (dims that only exist after ops like Resize get real sizes here, not 1).
    pub tuning_shapes: BTreeMap<String, Vec<usize>>,
    /// The float type float layers compute in. `F16` is honoured by targets with an f16
    /// path on the device (the wgpu target with shader-f16, which marks each step's
    /// precision in the plan); the CPU target reaches fp16 through weight-only quantization
    /// instead and ignores this.
    pub float: FloatPrecision,
}

/// The float type a target computes its float layers in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FloatPrecision {
    #[default]
    F32,
    F16,
}

impl FloatPrecision {
    pub fn name(self) -> &'static str {
        match self {
            FloatPrecision::F32 => "f32",
            FloatPrecision::F16 => "f16",
        }
    }
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            tune: TuneMode::Cache,
            tune_budget: Duration::from_secs(30),
            cache_dir: None,
            threads: None,
            dims: BTreeMap::new(),
            tuning_shapes: BTreeMap::new(),
            float: FloatPrecision::F32,
        }
    }
}

/// A cost figure that is not a measurement, with the model that produced it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CostEstimate {
    pub seconds: f64,
    pub flops: f64,
    pub bytes: f64,
    /// How the figure was estimated ("roofline: 2 cores x 16 FLOP/cycle x 3.0 GHz, 20 GB/s").
    pub model: String,
}

/// A loaded plan, ready to run.
pub trait Executable: Send {
    /// Runs on named inputs; symbolic dims are bound from them (per call).
    fn run(&mut self, inputs: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>, TargetError>;
    /// Peak bytes of intermediate buffers in the memory plan of the last call.
    fn planned_peak_bytes(&self) -> Option<u64>;
    /// Turns per-step timing on or off for later calls (off by default: it costs a clock read
    /// per step). Returns false when this executable cannot time its steps.
    fn set_profiling(&mut self, _on: bool) -> bool {
        false
    }
    /// Per-step wall time summed over the calls made while profiling was on.
    fn step_times(&self) -> Vec<StepTime> {
        Vec::new()
    }
}

/// Per-step times of `plan` from (calls, seconds) per step, as `Executable::step_times` reports them.
pub fn step_times(plan: &Plan, profile: &[(u64, f64)]) -> Vec<StepTime> {
    plan.steps
        .iter()
        .zip(profile)
        .enumerate()
        .map(|(i, (s, &(calls, seconds)))| StepTime {
            step: i,
            node: s.node.clone(),
            op: if s.domain.is_empty() { s.op.clone() } else { format!("{}::{}", s.domain, s.op) },
            kernel: format!("{}/{}", s.kernel, s.variant),
            calls,
            seconds,
        })
        .collect()
}

/// Measured wall time of one plan step, summed over `calls` runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StepTime {
    pub step: usize,
    pub node: String,
    pub op: String,
    pub kernel: String,
    pub calls: u64,
    pub seconds: f64,
}

/// A hardware target.
pub trait Target: Send + Sync {
    /// Short name ("cpu").
    fn name(&self) -> &'static str;
    /// Is the device present and the toolchain available?
    fn probe(&self) -> Availability;
    /// The id plans built here carry.
    fn id(&self) -> TargetId;
    /// Ops this target lowers to its own kernels (others may fall back, if the target has a
    /// fallback, or fail to lower).
    fn coverage(&self) -> OpSet;
    /// Lowers an optimized model to a plan, tuning kernel choices through `tuner`.
    fn lower(&self, model: &Model, opts: &CompileOptions, tuner: &mut Tuner) -> Result<(Plan, Vec<u8>), TargetError>;
    /// Loads a plan and its weight blob for execution.
    fn load(&self, plan: &Plan, weights: Vec<u8>) -> Result<Box<dyn Executable>, TargetError>;
    /// Estimated cost of one run with the given dims, for when the device is absent.
    fn estimate(&self, plan: &Plan, dims: &BTreeMap<String, usize>) -> CostEstimate;
}
