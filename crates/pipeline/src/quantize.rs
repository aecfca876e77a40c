//! The quantize phase: after fold-batchnorm, the float graph is calibrated (run on the CPU
//! target, one sample at a time, with the observed activations as extra outputs), rewritten by
//! `kiln-quant` (int8: QDQ; weight-only fp16/bf16/int4: Cast / blocked DequantizeLinear
//! weights), and handed to the rest of the pass pipeline, which fuses the products into
//! `kiln::QMatMul` / `kiln::QConv` / `kiln::WMatMul`.

use crate::PipelineError;
use crate::latency::{self, LatencyCheck};
use kiln_ir::Model;
use kiln_quant::{
    CalibMethod, CalibrationSet, Calibrator, Hessians, QuantOptions, QuantSummary, Ranges, SmoothOptions, SmoothSummary, WeightOnlyOptions,
    WeightOnlySummary,
};
use kiln_target::{CompileOptions, Target, TuneCache, TuneMode, Tuner};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The pass after which the quantizer rewrites the graph: shapes known, constants folded,
/// BatchNormalization folded into the convolutions, nothing fused yet (the graph is still
/// plain ai.onnx, so its QDQ form is what `--export-qdq` writes).
pub const QUANTIZE_AFTER: &str = "fold-batchnorm";

/// Where calibration samples come from (see `kiln_quant::data` for the file convention).
#[derive(Clone, Debug, PartialEq)]
pub enum CalibSource {
    /// A folder, or one `.npz` / `.npy` file.
    Path(PathBuf),
    /// A list of files (kiln.toml's `calibration.data = [...]`).
    Files(Vec<PathBuf>),
}

/// What is quantized, and to what.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheme {
    /// int8 weights and activations (static with calibration data, else dynamic).
    Int8,
    /// Weights only: fp16, bf16, int4 or int8 storage; activations stay float (bf16 with
    /// `compute_bf16`).
    WeightOnly(WeightOnlyOptions),
}

/// What `--precision int8|int4|fp16|bf16` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantRequest {
    pub scheme: Scheme,
    /// None: dynamic quantization everywhere, the data-free fallback (flagged in the summary).
    pub calibration: Option<CalibSource>,
    /// At most this many samples are read (None: all of them).
    pub max_samples: Option<usize>,
    pub method: CalibMethod,
    pub options: QuantOptions,
    /// Emit the int8 plan even where the latency guard measures it slower than float.
    pub force: bool,
    /// Accuracy budget: the most harmful layers stay f32 until it holds (mixed precision).
    pub budget: Option<crate::mixed::Budget>,
    /// The samples the budget is measured on (None: the first calibration samples).
    pub eval: Option<CalibSource>,
    /// Class ids, one per row of the evaluation samples' first output, for an accuracy budget.
    pub labels: Option<PathBuf>,
    /// SmoothQuant before static quantization (needs calibration data).
    pub smooth: Option<SmoothOptions>,
}

impl Default for QuantRequest {
    fn default() -> Self {
        QuantRequest {
            scheme: Scheme::Int8,
            calibration: None,
            max_samples: None,
            method: CalibMethod::MinMax,
            options: QuantOptions::default(),
            force: false,
            budget: None,
            eval: None,
            labels: None,
            smooth: None,
        }
    }
}

/// What the quantizer wrote, per scheme.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Summary {
    Int8(QuantSummary),
    WeightOnly(WeightOnlySummary),
}

impl Summary {
    /// The quantized nodes: (name, op type).
    pub fn layers(&self) -> Vec<(String, String)> {
        match self {
            Summary::Int8(s) => s.nodes.iter().map(|n| (n.node.clone(), n.op.clone())).collect(),
            Summary::WeightOnly(s) => s.nodes.iter().map(|n| (n.node.clone(), n.op.clone())).collect(),
        }
    }

    /// The quantized nodes' names.
    pub fn nodes(&self) -> Vec<String> {
        self.layers().into_iter().map(|(n, _)| n).collect()
    }

    /// The int8 summary (None for weight-only).
    pub fn int8(&self) -> Option<&QuantSummary> {
        match self {
            Summary::Int8(s) => Some(s),
            Summary::WeightOnly(_) => None,
        }
    }

    /// The weight-only summary (None for int8).
    pub fn weight_only(&self) -> Option<&WeightOnlySummary> {
        match self {
            Summary::WeightOnly(s) => Some(s),
            Summary::Int8(_) => None,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Summary::Int8(s) => s.fmt(f),
            Summary::WeightOnly(s) => s.fmt(f),
        }
    }
}

/// How the graph was quantized, kept so it can be quantized again the same way (the same
/// ranges, the same Hessians) with more layers left in float.
#[derive(Clone, Debug)]
pub enum Recipe {
    Int8 { options: QuantOptions, ranges: Option<Ranges>, samples: Option<u64>, method: CalibMethod },
    WeightOnly { options: WeightOnlyOptions, hessians: Option<Hessians> },
}

impl Recipe {
    /// The precision label of the quantized layers: int8, int4, fp16, bf16 (or int8w: int8
    /// weights only).
    pub fn precision(&self) -> &'static str {
        match self {
            Recipe::Int8 { .. } => "int8",
            Recipe::WeightOnly { options, .. } => match options.format {
                kiln_quant::WeightFormat::F16 => "fp16",
                kiln_quant::WeightFormat::BF16 => "bf16",
                kiln_quant::WeightFormat::Int4 => "int4",
                kiln_quant::WeightFormat::Int8 => "int8w",
            },
        }
    }

    /// This recipe with `nodes` also left in float.
    pub fn without(&self, nodes: &[String]) -> Recipe {
        let mut r = self.clone();
        match &mut r {
            Recipe::Int8 { options, .. } => options.exclude_nodes.extend(nodes.iter().cloned()),
            Recipe::WeightOnly { options, .. } => options.exclude_nodes.extend(nodes.iter().cloned()),
        }
        r
    }

    /// Quantizes `base` (the float graph after [`QUANTIZE_AFTER`]).
    pub fn apply(&self, base: &Model) -> Result<(Model, Summary), PipelineError> {
        Ok(match self {
            Recipe::Int8 { options, ranges, samples, method } => {
                let (m, mut s) = kiln_quant::quantize(base, options, ranges.as_ref())?;
                if ranges.is_some() {
                    (s.samples, s.calibration) = (*samples, Some(*method));
                }
                (m, Summary::Int8(s))
            }
            Recipe::WeightOnly { options, hessians } => {
                let (m, mut s) = kiln_quant::quantize_weight_only(base.clone(), options, hessians.as_ref())?;
                s.samples = hessians.as_ref().map(|h| h.samples);
                (m, Summary::WeightOnly(s))
            }
        })
    }
}

/// What the quantize phase did.
#[derive(Clone, Debug)]
pub struct Quantized {
    pub summary: Summary,
    /// The quantized graph as the quantizer wrote it (plain ai.onnx: what `--export-qdq` writes).
    pub qdq: Model,
    /// Calibration (or Hessian collection), when data was given: samples read, measured time,
    /// observer memory.
    pub calibration: Option<CalibrationRun>,
    /// How to quantize again; its exclusions include the layers mixed precision and the
    /// latency guard kept in float.
    pub recipe: Recipe,
    /// What the latency guard measured and decided (None: forced, or the compile stopped early).
    pub latency: Option<LatencyCheck>,
    /// Every layer's precision and why, when an accuracy budget was given.
    pub mixed: Option<crate::mixed::MixedReport>,
    /// What SmoothQuant did, when asked.
    pub smooth: Option<SmoothSummary>,
}

impl Quantized {
    /// Whether the emitted plan is the quantized one (false when the latency guard declined it).
    pub fn emitted(&self) -> bool {
        self.latency.as_ref().is_none_or(|l| !l.declined)
    }

    /// The precision of the emitted plan's quantized layers, or f32 when it was declined.
    pub fn emitted_precision(&self) -> &'static str {
        if self.emitted() { self.recipe.precision() } else { "f32" }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationRun {
    pub samples: u64,
    pub time: Duration,
    /// Bytes the observers hold: the same after 10 samples or 10,000.
    pub observer_bytes: usize,
}

/// Calibrates (when data is given) and rewrites `model`, which has been optimized up to
/// [`QUANTIZE_AFTER`], into its quantized form. Also returns the float graph the quantizer
/// started from (`model`, or its smoothed form with SmoothQuant): what the latency guard
/// compares with and re-quantizes.
pub fn quantize(model: Model, req: &QuantRequest) -> Result<(Quantized, Model), PipelineError> {
    let (smoothed, smooth_summary) = match (&req.smooth, &req.calibration, &req.scheme) {
        (None, _, _) => (None, None),
        (Some(_), _, Scheme::WeightOnly(_)) => {
            return Err(PipelineError::Calibration(
                "SmoothQuant prepares activations for int8; weight-only precisions keep float activations".into(),
            ));
        }
        (Some(_), None, _) => {
            return Err(PipelineError::Calibration(
                "SmoothQuant scales activations by their calibrated per-channel maxima: give calibration data (--calib DIR)".into(),
            ));
        }
        (Some(o), Some(src), Scheme::Int8) => {
            let (m, s) = smooth(&model, src, req, o)?;
            (Some(m), Some(s))
        }
    };
    let base = smoothed.unwrap_or(model);
    let model = &base;
    let (recipe, calibration) = match (&req.scheme, &req.calibration) {
        (Scheme::Int8, None) => (Recipe::Int8 { options: req.options.clone(), ranges: None, samples: None, method: req.method }, None),
        (Scheme::Int8, Some(src)) => {
            let (r, run) = calibrate(model, src, req)?;
            (Recipe::Int8 { options: req.options.clone(), ranges: Some(r), samples: Some(run.samples), method: req.method }, Some(run))
        }
        (Scheme::WeightOnly(o), src) => {
            let gptq = o.method == kiln_quant::Rounding::Gptq && o.format.is_int();
            match (gptq, src) {
                (true, Some(src)) => {
                    let (h, run) = hessians(model, src, req, o)?;
                    (Recipe::WeightOnly { options: o.clone(), hessians: Some(h) }, Some(run))
                }
                (true, None) => {
                    return Err(PipelineError::Calibration(
                        "GPTQ compensates rounding errors with the activations' statistics: give calibration data (--calib DIR), or use round-to-nearest (--weight-method rtn)".into(),
                    ));
                }
                (false, _) => (Recipe::WeightOnly { options: o.clone(), hessians: None }, None),
            }
        }
    };
    let (recipe, mixed) = match req.budget {
        None => (recipe, None),
        Some(b) => {
            let samples = eval_samples(model, req)?;
            let labels = req.labels.as_deref().map(read_labels).transpose()?;
            let (kept, r) = crate::mixed::choose(model, &recipe, b, &samples, labels.as_deref())?;
            (recipe.without(&kept), Some(r))
        }
    };
    let (qdq, summary) = recipe.apply(model)?;
    Ok((Quantized { summary, qdq, calibration, recipe, latency: None, mixed, smooth: smooth_summary }, base))
}

/// The latency guard (see [`crate::latency`]) on a compile whose quantized plan is in `out`;
/// `base` is the float graph the quantizer started from.
pub(crate) fn guard(
    out: &mut crate::Compiled,
    base: &Model,
    req: &QuantRequest,
    target: &dyn Target,
    opts: &CompileOptions,
    tuner: &mut Tuner,
) -> Result<(), PipelineError> {
    let (Some(mut q), Some(plan)) = (out.quantized.take(), out.plan.take()) else { return Ok(()) };
    let float_model = latency::float_model(base)?;
    let mut float = latency::load(target, &float_model, opts, tuner)?;
    let float_plan = float.plan.clone();
    let exe = target.load(&plan, out.weights.clone())?;
    let mut int8 = latency::Loaded { plan, weights: std::mem::take(&mut out.weights), exe };
    let inputs = match timing_sample(base, req) {
        Some(s) => s,
        None => latency::synthetic_inputs(&float.plan, &opts.dims)?,
    };
    let quantized = q.summary.nodes();
    let [(f_s, f_steps), (mut q_s, q_steps)]: [_; 2] = latency::time(&mut [float.exe.as_mut(), int8.exe.as_mut()], &inputs)?
        .try_into()
        .map_err(|_| PipelineError::Calibration("timing".into()))?;
    let slower = latency::slower_layers(&q_steps, &f_steps, &quantized);
    if !slower.is_empty() {
        // Those layers back to float: the same ranges / Hessians, the rest of the passes, lowered again.
        let recipe = q.recipe.without(&slower.iter().map(|(n, _, _)| n.clone()).collect::<Vec<_>>());
        let (qdq, summary) = recipe.apply(base)?;
        let mut m = qdq.clone();
        out.patches.extend(kiln_passes::optimize(&mut m, &kiln_passes::pipeline_after(QUANTIZE_AFTER)?)?);
        int8 = latency::load(target, &m, opts, tuner)?;
        (q.qdq, q.summary, q.recipe, out.model) = (qdq, summary, recipe, m);
        let t = latency::time(&mut [float.exe.as_mut(), int8.exe.as_mut()], &inputs)?;
        q_s = t.get(1).map_or(q_s, |x| x.0);
    }
    // Declined also when the guard sent every quantized layer back to float: what is left is
    // the float plan, and saying otherwise would mislabel it.
    let declined = q_s >= f_s || q.summary.nodes().is_empty();
    q.latency = Some(LatencyCheck {
        device: int8.plan.target.device.clone(),
        runs: latency::RUNS,
        precision: q.recipe.precision().to_string(),
        float_ms: f_s * 1e3,
        quantized_ms: q_s * 1e3,
        layers_kept_float: slower,
        declined,
    });
    if declined {
        (out.plan, out.weights, out.model) = (Some(float_plan), std::mem::take(&mut float.weights), float_model);
    } else {
        (out.plan, out.weights) = (Some(int8.plan), int8.weights);
    }
    out.quantized = Some(q);
    Ok(())
}

/// What mixed precision measures on: every evaluation sample, else the first calibration
/// samples, else one synthetic input from the declared input shapes (symbolic dims 1).
fn eval_samples(model: &Model, req: &QuantRequest) -> Result<Vec<Vec<(String, kiln_tensor::Tensor)>>, PipelineError> {
    let chosen = match (&req.eval, &req.calibration) {
        (Some(e), _) => Some((e, usize::MAX)),
        (None, Some(c)) => Some((c, crate::mixed::EVAL_SAMPLES)),
        (None, None) => None,
    };
    if let Some((src, n)) = chosen {
        let set = open_set(model, src)?;
        let samples: Result<Vec<_>, _> = set.iter().take(n).map(|s| s.map(|s| s.inputs)).collect();
        return Ok(samples.map_err(kiln_quant::QuantError::from)?);
    }
    if req.budget.is_some_and(|b| b.needs_labels()) {
        return Err(PipelineError::Calibration(
            "an accuracy budget is measured on labelled data: give --eval-data DIR (or --calib DIR) with --labels FILE.npy".into(),
        ));
    }
    let g = &model.graph;
    let mut one = Vec::new();
    for v in g.runtime_inputs() {
        let info = g.value(v);
        let shape = info.shape.as_ref().map(|s| s.0.iter().map(|d| d.known().unwrap_or(1)).collect()).unwrap_or_default();
        one.push((info.name.clone(), latency::synthetic_tensor(&info.name, info.dtype.unwrap_or(kiln_tensor::DType::F32), shape)?));
    }
    Ok(vec![one])
}

/// Class ids from a `.npy` file of integers.
fn read_labels(path: &std::path::Path) -> Result<Vec<i64>, PipelineError> {
    let bad = |why: String| PipelineError::Calibration(format!("labels {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let t = kiln_tensor::npy::read(&bytes).map_err(|e| bad(e.to_string()))?;
    if !t.dtype().is_int() {
        return Err(bad(format!("class ids must be integers, got {}", t.dtype())));
    }
    t.to_i64_vec().map_err(|e| bad(e.to_string()))
}

/// The first calibration sample, the most realistic input to time with.
fn timing_sample(model: &Model, req: &QuantRequest) -> Option<Vec<(String, kiln_tensor::Tensor)>> {
    let set = open_set(model, req.calibration.as_ref()?).ok()?;
    set.iter().next()?.ok().map(|s| s.inputs)
}

/// The calibration samples `src` names, indexed (nothing read yet).
fn open_set(model: &Model, src: &CalibSource) -> Result<CalibrationSet, PipelineError> {
    let set = match src {
        CalibSource::Path(p) => CalibrationSet::open(p, model),
        CalibSource::Files(f) => CalibrationSet::from_files(f, model),
    };
    Ok(set.map_err(kiln_quant::QuantError::from)?)
}

/// `model` lowered for the CPU target with default kernels (nothing tuned) and loaded: what
/// calibration and mixed precision run their samples on.
pub(crate) fn cpu_executable(model: &Model) -> Result<Box<dyn kiln_target::Executable>, PipelineError> {
    let cpu = kiln_target_cpu::CpuTarget;
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let mut tuner = Tuner::new(TuneMode::Off, TuneCache::in_memory(), cpu.id().fingerprint, Duration::ZERO);
    let (plan, weights) = cpu.lower(model, &opts, &mut tuner)?;
    Ok(cpu.load(&plan, weights)?)
}

/// Runs `model` with `observation`'s values as extra outputs (CPU target, default kernels,
/// nothing tuned) on each sample of `src` (at most `max_samples`), one at a time, handing the
/// observed outputs to `feed`. Returns the samples read.
fn observe(
    model: &Model,
    observation: &kiln_quant::Observation,
    src: &CalibSource,
    max_samples: Option<usize>,
    mut feed: impl FnMut(&[(String, kiln_tensor::Tensor)]) -> Result<(), kiln_quant::QuantError>,
) -> Result<u64, PipelineError> {
    let set = open_set(model, src)?;
    if set.is_empty() {
        return Err(PipelineError::Calibration(
            "the calibration data holds no sample; give at least one, or leave --calib out for dynamic (data-free) quantization".into(),
        ));
    }
    let mut observed = kiln_quant::with_observed_outputs(model, observation);
    kiln_passes::optimize(&mut observed, &kiln_passes::default_pipeline())?;
    let mut exe = cpu_executable(&observed)?;
    let mut samples = 0u64;
    for sample in set.iter().take(max_samples.unwrap_or(usize::MAX)) {
        let kiln_quant::Sample { name, inputs } = sample.map_err(kiln_quant::QuantError::from)?;
        let mut outputs = exe.run(inputs).map_err(|e| PipelineError::Calibration(format!("calibration sample {name}: {e}")))?;
        outputs.retain(|(n, _)| observation.values.contains(n));
        feed(&outputs)?;
        samples += 1;
    }
    Ok(samples)
}

/// Runs the float model on every sample with the observed activations as outputs and returns
/// their ranges.
fn calibrate(model: &Model, src: &CalibSource, req: &QuantRequest) -> Result<(kiln_quant::Ranges, CalibrationRun), PipelineError> {
    let started = Instant::now();
    let observation = kiln_quant::plan_observation(model, &req.options);
    let mut cal = Calibrator::new(req.method, &observation);
    let samples =
        observe(model, &observation, src, req.max_samples, |outs| cal.observe_outputs(outs.iter().map(|(n, t)| (n.as_str(), t))))?;
    let observer_bytes = cal.memory_bytes();
    let ranges = cal.finish()?;
    Ok((ranges, CalibrationRun { samples, time: started.elapsed(), observer_bytes }))
}

/// GPTQ's Hessians of the weight-only layers' activations over the calibration samples.
fn hessians(
    model: &Model,
    src: &CalibSource,
    req: &QuantRequest,
    o: &WeightOnlyOptions,
) -> Result<(Hessians, CalibrationRun), PipelineError> {
    let started = Instant::now();
    let observation = kiln_quant::plan_weight_only(model, o);
    let mut collector = kiln_quant::HessianCollector::new(&observation, model);
    let samples =
        observe(model, &observation, src, req.max_samples, |outs| collector.observe_outputs(outs.iter().map(|(n, t)| (n.as_str(), t))))?;
    let observer_bytes = collector.memory_bytes();
    Ok((collector.finish()?, CalibrationRun { samples, time: started.elapsed(), observer_bytes }))
}

/// SmoothQuant: per-channel activation maxima over the calibration samples, then the float
/// graph rewritten with the activation ranges moved into the weights.
fn smooth(model: &Model, src: &CalibSource, req: &QuantRequest, opts: &SmoothOptions) -> Result<(Model, SmoothSummary), PipelineError> {
    let plan = kiln_quant::plan_smoothing(model, opts);
    let observation = plan.observation();
    let mut collector = kiln_quant::ChannelMaxCollector::new(&observation);
    observe(model, &observation, src, req.max_samples, |outs| collector.observe_outputs(outs.iter().map(|(n, t)| (n.as_str(), t))))?;
    let stats = collector.finish()?;
    Ok(kiln_quant::smooth(model.clone(), &plan, &stats, opts)?)
}
