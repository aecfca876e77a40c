//! The compile pipeline as named phases (import -> optimize -> lower -> write), and loading
//! what `kiln run`/`kiln bench` are pointed at (a model file or a compiled plan folder).
//!
//! Architecture invariant: no clap, no printing, no process exit: the CLI owns those. Targets
//! are chosen by name here and nowhere upstream.

use kiln_ir::Model;
use kiln_reference::Value;
use kiln_target::{CompileOptions, Executable, Plan, Target, TargetError, TuneCache, TuneDecision, Tuner};
use kiln_tensor::Tensor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Import(#[from] kiln_onnx::OnnxError),
    #[error(transparent)]
    Hf(#[from] kiln_hf::HfError),
    #[error(transparent)]
    Weights(#[from] kiln_safetensors::SafetensorsError),
    #[error("--weights {weights}: {reason}")]
    Rebind { weights: String, reason: String },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Exec(#[from] kiln_reference::ExecError),
    #[error("unknown target '{0}': this Kiln has: cpu, wgpu")]
    UnknownTarget(String),
    #[error(transparent)]
    Pass(#[from] kiln_passes::PassError),
    #[error("unknown phase '{0}'; phases: {1}")]
    UnknownPhase(String, String),
    #[error(transparent)]
    Quant(#[from] kiln_quant::QuantError),
    #[error("calibration: {0}")]
    Calibration(String),
}

pub mod bounds;
pub mod latency;
pub mod mixed;
mod quantize;
pub use latency::LatencyCheck;
pub use quantize::{CalibSource, CalibrationRun, QUANTIZE_AFTER, QuantRequest, Quantized, Recipe, Scheme, Summary};

/// The phases a compile can stop after (`kiln compile --stop-after PHASE`): `import`, each
/// graph pass of the default pipeline by name, `optimize` (all passes), `lower`.
pub fn phases() -> Vec<&'static str> {
    let mut p = vec!["import"];
    p.extend(kiln_passes::phase_names());
    p.extend(["optimize", "lower"]);
    p
}

/// A target by name.
pub fn target(name: &str) -> Result<Box<dyn Target>, PipelineError> {
    match name {
        "cpu" => Ok(Box::new(kiln_target_cpu::CpuTarget)),
        "wgpu" => Ok(Box::new(kiln_target_wgpu::WgpuTarget)),
        other => Err(PipelineError::UnknownTarget(other.into())),
    }
}

/// What a compile did, for the CLI to report.
pub struct Compiled {
    pub model: Model,
    pub plan: Option<Plan>,
    pub weights: Vec<u8>,
    /// Wall time per phase, measured.
    pub phase_times: Vec<(&'static str, Duration)>,
    pub tune: Vec<TuneDecision>,
    /// Every rewrite the graph passes made, in order.
    pub patches: Vec<kiln_passes::AppliedPatch>,
    /// What the quantize phase did (int8 compiles only).
    pub quantized: Option<Quantized>,
}

/// Reads a model: an `.onnx` file, or a Hugging Face model (a folder with config.json, or a
/// `.safetensors` file / shard index with config.json beside it) built by `kiln-hf`. Nodes
/// outside `ops` are marked unsupported. With `weights`, the graph's initializers are replaced
/// by name from that safetensors checkpoint; the report says what matched.
pub fn load_model(
    path: &Path,
    ops: &kiln_ir::OpSet,
    weights: Option<&Path>,
) -> Result<(Model, Option<kiln_hf::RebindReport>), PipelineError> {
    let mut model = if kiln_hf::is_hf_model(path) {
        kiln_hf::build(path, &kiln_hf::BuildOptions::default(), ops)?
    } else {
        kiln_onnx::load(path, ops)?
    };
    let report = match weights {
        None => None,
        Some(w) => {
            let ck = kiln_safetensors::Checkpoint::open(w)?;
            let report = kiln_hf::rebind(&mut model, &ck)?;
            if report.matched.is_empty() {
                return Err(PipelineError::Rebind {
                    weights: w.display().to_string(),
                    reason: format!("no tensor name matches an initializer of the model ({})", report.summary()),
                });
            }
            Some(report)
        }
    };
    Ok((model, report))
}

/// Imports `model_path`, optimizes it, and lowers it for `target` (unless `stop_after` says
/// otherwise). Tuning records are read from and merged into `opts.cache_dir`.
pub fn compile(model_path: &Path, target: &dyn Target, opts: &CompileOptions, stop_after: Option<&str>) -> Result<Compiled, PipelineError> {
    let t = Instant::now();
    let (model, _) = load_model(model_path, &target.coverage(), None)?;
    let import = t.elapsed();
    let mut out = compile_model(model, target, opts, stop_after)?;
    out.phase_times.insert(0, ("import", import));
    Ok(out)
}

/// Whether `target` takes `--precision fp16` as f16 storage and math on its device
/// (`CompileOptions::float`) rather than as weight-only fp16 (the wgpu target).
pub fn computes_f16(target: &str) -> bool {
    target == "wgpu"
}

/// Whether `target` can compute in f16 here; the error names the device and what it lacks
/// (the plan then stays f32).
pub fn f16_support(target: &str) -> Result<(), String> {
    match target {
        "wgpu" => kiln_target_wgpu::f16_support().map_err(|e| e.to_string()),
        other => Err(format!("the {other} target has no f16 compute path (--precision fp16 stores its weights in f16 instead)")),
    }
}

/// Whether `target` computes bf16 x bf16 products natively here (the CPU with AVX512-BF16),
/// so `--precision bf16` rounds activations to bf16 too instead of converting weights to f32.
pub fn computes_bf16(target: &str) -> bool {
    target == "cpu" && kiln_target_cpu::computes_bf16()
}

/// The phases after import, on a model already in memory.
pub fn compile_model(
    model: Model,
    target: &dyn Target,
    opts: &CompileOptions,
    stop_after: Option<&str>,
) -> Result<Compiled, PipelineError> {
    compile_model_with(model, target, opts, stop_after, None)
}

/// [`compile_model`], quantized to int8 when `quant` is given: the passes run up to
/// [`QUANTIZE_AFTER`], the quantize phase rewrites the graph (calibrating on the CPU target
/// when data is given), then the rest of the passes run.
pub fn compile_model_with(
    model: Model,
    target: &dyn Target,
    opts: &CompileOptions,
    stop_after: Option<&str>,
    quant: Option<&QuantRequest>,
) -> Result<Compiled, PipelineError> {
    if let Some(p) = stop_after
        && !phases().contains(&p)
    {
        return Err(PipelineError::UnknownPhase(p.to_string(), phases().join(", ")));
    }
    let mut out = Compiled {
        model,
        plan: None,
        weights: Vec::new(),
        phase_times: Vec::new(),
        tune: Vec::new(),
        patches: Vec::new(),
        quantized: None,
    };
    if stop_after == Some("import") {
        return Ok(out);
    }
    let t = Instant::now();
    let until = stop_after.filter(|p| *p != "optimize" && *p != "lower");
    let names = kiln_passes::phase_names();
    let before_quant = |p: &str| names.iter().position(|n| *n == p) <= names.iter().position(|n| *n == QUANTIZE_AFTER);
    // The float graph the quantizer started from, kept for the latency guard.
    let mut guard_base: Option<Model> = None;
    match quant {
        Some(req) if until.is_none_or(|p| !before_quant(p)) => {
            out.patches = kiln_passes::optimize(&mut out.model, &kiln_passes::pipeline_until(QUANTIZE_AFTER)?)?;
            out.phase_times.push(("optimize", t.elapsed()));
            let t = Instant::now();
            let (q, base) = quantize::quantize(std::mem::take(&mut out.model), req)?;
            if stop_after.is_none_or(|p| p == "lower") && !req.force {
                guard_base = Some(base);
            }
            out.model = q.qdq.clone();
            out.quantized = Some(q);
            out.phase_times.push(("quantize", t.elapsed()));
            let t = Instant::now();
            let mut rest = kiln_passes::pipeline_after(QUANTIZE_AFTER)?;
            if let Some(p) = until
                && let Some(i) = rest.iter().position(|x| x.name() == p)
            {
                rest.truncate(i + 1);
            }
            out.patches.extend(kiln_passes::optimize(&mut out.model, &rest)?);
            out.phase_times.push(("optimize", t.elapsed()));
        }
        _ => {
            let passes = match until {
                Some(p) => kiln_passes::pipeline_until(p)?,
                None => kiln_passes::default_pipeline(),
            };
            out.patches = kiln_passes::optimize(&mut out.model, &passes)?;
            out.phase_times.push(("optimize", t.elapsed()));
        }
    }
    if stop_after.is_some_and(|p| p != "lower") {
        return Ok(out);
    }
    let t = Instant::now();
    let cache = match &opts.cache_dir {
        Some(d) => TuneCache::open(d)?,
        None => TuneCache::in_memory(),
    };
    let mut tuner = Tuner::new(opts.tune, cache, target.id().fingerprint, opts.tune_budget);
    let mut opts = opts.clone();
    if opts.tuning_shapes.is_empty() {
        opts.tuning_shapes = tuning_shapes(&out.model, &opts.dims);
    }
    let (plan, weights) = target.lower(&out.model, &opts, &mut tuner)?;
    out.phase_times.push(("lower", t.elapsed()));
    out.plan = Some(plan);
    out.weights = weights;
    if let (Some(base), Some(req)) = (&guard_base, quant) {
        let t = Instant::now();
        quantize::guard(&mut out, base, req, target, &opts, &mut tuner)?;
        out.phase_times.push(("latency guard", t.elapsed()));
    }
    tuner.cache.save()?;
    out.tune = tuner.decisions;
    Ok(out)
}

/// The concrete shape of every value whose shape follows from the runtime inputs with
/// `dims` bound: shape inference again on a copy whose input dims are known. Empty when no
/// dims are given or inference fails (tuning then falls back to the symbolic shapes).
fn tuning_shapes(model: &Model, dims: &std::collections::BTreeMap<String, usize>) -> std::collections::BTreeMap<String, Vec<usize>> {
    let mut out = std::collections::BTreeMap::new();
    if dims.is_empty() {
        return out;
    }
    let mut m = model.clone();
    let g = &mut m.graph;
    for v in g.runtime_inputs() {
        if let Some(shape) = &mut g.value_mut(v).shape {
            for d in &mut shape.0 {
                if let kiln_tensor::Dim::Sym(s) = d
                    && let Some(&n) = dims.get(s.as_str())
                {
                    *d = kiln_tensor::Dim::Known(n);
                }
            }
        }
    }
    // Derived facts refine declared symbols; symbols that stood for these dims become known.
    let inputs: std::collections::BTreeSet<usize> = g.inputs.iter().map(|v| v.0).collect();
    for (i, info) in g.values.iter_mut().enumerate() {
        if !inputs.contains(&i) && info.shape.as_ref().is_some_and(|s| s.0.iter().any(|d| matches!(d, kiln_tensor::Dim::Sym(_)))) {
            info.shape = None;
        }
    }
    let passes: Vec<Box<dyn kiln_passes::Pass>> = vec![Box::new(kiln_passes::InferShapes::default())];
    if kiln_passes::optimize(&mut m, &passes).is_err() {
        return out;
    }
    for info in &m.graph.values {
        if let Some(s) = info.shape.as_ref().and_then(|s| s.0.iter().map(kiln_tensor::Dim::known).collect::<Option<Vec<usize>>>()) {
            out.insert(info.name.clone(), s);
        }
    }
    out
}

/// What `kiln run` / `kiln bench` execute: a model on the reference executor, or a plan.
pub enum Runnable {
    Model(Box<Model>),
    Plan { plan: Box<Plan>, exe: Box<dyn Executable> },
}

impl Runnable {
    /// A `.onnx` file, a Hugging Face model (see [`load_model`]), or a folder written by
    /// `kiln compile`.
    pub fn open(path: &Path) -> Result<Runnable, PipelineError> {
        Ok(Runnable::open_with(path, None)?.0)
    }

    /// [`Runnable::open`], with a model's initializers rebound from `weights` (a compiled plan's
    /// weights are fixed: give `--weights` to the compile instead).
    pub fn open_with(path: &Path, weights: Option<&Path>) -> Result<(Runnable, Option<kiln_hf::RebindReport>), PipelineError> {
        if path.is_dir() && !kiln_hf::is_hf_model(path) {
            if let Some(w) = weights {
                return Err(PipelineError::Rebind {
                    weights: w.display().to_string(),
                    reason: "a compiled plan's weights are fixed; pass --weights to kiln compile".into(),
                });
            }
            let (plan, weights) = kiln_target::read_plan(path)?;
            let exe = target(&plan.target.kind)?.load(&plan, weights)?;
            return Ok((Runnable::Plan { plan: Box::new(plan), exe }, None));
        }
        let (model, report) = load_model(path, &kiln_reference::op_set(), weights)?;
        Ok((Runnable::Model(Box::new(model)), report))
    }

    /// Integer inputs that index a table, with the table's size (see [`bounds`]).
    pub fn index_bounds(&self) -> std::collections::BTreeMap<String, usize> {
        match self {
            Runnable::Model(m) => bounds::of_graph(&m.graph),
            Runnable::Plan { plan, .. } => bounds::of_plan(plan),
        }
    }

    /// (name, dtype, shape) of each runtime input as declared.
    pub fn inputs(&self) -> Vec<(String, Option<kiln_tensor::DType>, Option<kiln_tensor::Shape>)> {
        match self {
            Runnable::Model(m) => m
                .graph
                .runtime_inputs()
                .iter()
                .map(|&v| {
                    let i = m.graph.value(v);
                    (i.name.clone(), i.dtype, i.shape.clone())
                })
                .collect(),
            Runnable::Plan { plan, .. } => plan
                .inputs
                .iter()
                .map(|&v| {
                    let p = &plan.values[v];
                    let shape = p.shape.as_ref().map(|s| {
                        kiln_tensor::Shape(
                            s.iter()
                                .map(|d| match d {
                                    kiln_target::DimSpec::Known(n) => kiln_tensor::Dim::Known(*n),
                                    kiln_target::DimSpec::Sym(s) => kiln_tensor::Dim::Sym(s.clone()),
                                })
                                .collect(),
                        )
                    });
                    (p.name.clone(), p.dtype(), shape)
                })
                .collect(),
        }
    }

    /// Unsupported ops of a model (a plan has none).
    pub fn unsupported(&self) -> Vec<String> {
        match self {
            Runnable::Model(m) => {
                let mut v: Vec<String> = m.all_nodes().iter().filter(|n| n.unsupported.is_some()).map(|n| n.qualified_op()).collect();
                v.sort();
                v.dedup();
                v
            }
            Runnable::Plan { .. } => Vec::new(),
        }
    }

    /// "reference executor" or "cpu plan (device)".
    pub fn executor(&self) -> String {
        match self {
            Runnable::Model(_) => "reference executor".into(),
            Runnable::Plan { plan, .. } => format!("{} plan on {}", plan.target.kind, plan.target.device),
        }
    }

    pub fn run(&mut self, inputs: Vec<(String, Tensor)>) -> Result<Vec<(String, Value)>, PipelineError> {
        match self {
            Runnable::Model(m) => Ok(kiln_reference::run(m, inputs.into_iter().map(|(n, t)| (n, Value::Tensor(t))).collect())?),
            Runnable::Plan { exe, .. } => Ok(exe.run(inputs)?.into_iter().map(|(n, t)| (n, Value::Tensor(t))).collect()),
        }
    }

    pub fn planned_peak_bytes(&self) -> Option<u64> {
        match self {
            Runnable::Model(_) => None,
            Runnable::Plan { exe, .. } => exe.planned_peak_bytes(),
        }
    }

    /// Turns per-step timing on; false when this runnable cannot time its steps (a model on
    /// the reference executor).
    pub fn set_profiling(&mut self, on: bool) -> bool {
        match self {
            Runnable::Model(_) => false,
            Runnable::Plan { exe, .. } => exe.set_profiling(on),
        }
    }

    pub fn step_times(&self) -> Vec<kiln_target::StepTime> {
        match self {
            Runnable::Model(_) => Vec::new(),
            Runnable::Plan { exe, .. } => exe.step_times(),
        }
    }
}

/// The default tuning-cache folder: `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln/tune`, else
/// `~/.cache/kiln/tune`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("KILN_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("kiln").join("tune"))
}
