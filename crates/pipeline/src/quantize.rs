//! The quantize phase: after fold-batchnorm, the float graph is calibrated (run on the CPU
//! target, one sample at a time, with the observed activations as extra outputs), rewritten to
//! QDQ by `kiln-quant`, and handed to the rest of the pass pipeline, which fuses the QDQ
//! products into `kiln::QMatMul` / `kiln::QConv`.

use crate::PipelineError;
use kiln_ir::Model;
use kiln_quant::{CalibMethod, CalibrationSet, Calibrator, QuantOptions, QuantSummary};
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

/// What `--precision int8` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantRequest {
    /// None: dynamic quantization everywhere, the data-free fallback (flagged in the summary).
    pub calibration: Option<CalibSource>,
    /// At most this many samples are read (None: all of them).
    pub max_samples: Option<usize>,
    pub method: CalibMethod,
    pub options: QuantOptions,
}

impl Default for QuantRequest {
    fn default() -> Self {
        QuantRequest { calibration: None, max_samples: None, method: CalibMethod::MinMax, options: QuantOptions::default() }
    }
}

/// What the quantize phase did.
#[derive(Clone, Debug)]
pub struct Quantized {
    pub summary: QuantSummary,
    /// The QDQ graph as the quantizer wrote it (plain ai.onnx: what `--export-qdq` writes).
    pub qdq: Model,
    /// Calibration, when data was given: samples read, measured time, observer memory.
    pub calibration: Option<CalibrationRun>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationRun {
    pub samples: u64,
    pub time: Duration,
    /// Bytes the observers hold: the same after 10 samples or 10,000.
    pub observer_bytes: usize,
}

/// Calibrates (when data is given) and rewrites `model`, which has been optimized up to
/// [`QUANTIZE_AFTER`], into its QDQ form.
pub fn quantize(model: &Model, req: &QuantRequest) -> Result<Quantized, PipelineError> {
    let (ranges, calibration) = match &req.calibration {
        None => (None, None),
        Some(src) => {
            let (r, run) = calibrate(model, src, req)?;
            (Some(r), Some(run))
        }
    };
    let (qdq, mut summary) = kiln_quant::quantize(model, &req.options, ranges.as_ref())?;
    if let Some(c) = &calibration {
        summary.samples = Some(c.samples);
        summary.calibration = Some(req.method);
    }
    Ok(Quantized { summary, qdq, calibration })
}

/// Runs the float model on every sample with the observed activations as outputs (CPU target,
/// default kernels, nothing tuned) and returns their ranges.
fn calibrate(model: &Model, src: &CalibSource, req: &QuantRequest) -> Result<(kiln_quant::Ranges, CalibrationRun), PipelineError> {
    let started = Instant::now();
    let set = match src {
        CalibSource::Path(p) => CalibrationSet::open(p, model),
        CalibSource::Files(f) => CalibrationSet::from_files(f, model),
    }
    .map_err(kiln_quant::QuantError::from)?;
    if set.is_empty() {
        return Err(PipelineError::Calibration("the calibration data holds no sample; give at least one, or leave --calib out for dynamic (data-free) quantization".into()));
    }
    let observation = kiln_quant::plan_observation(model, &req.options);
    let mut observed = kiln_quant::with_observed_outputs(model, &observation);
    kiln_passes::optimize(&mut observed, &kiln_passes::default_pipeline())?;
    let cpu = kiln_target_cpu::CpuTarget;
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let mut tuner = Tuner::new(TuneMode::Off, TuneCache::in_memory(), cpu.id().fingerprint, Duration::ZERO);
    let (plan, weights) = cpu.lower(&observed, &opts, &mut tuner)?;
    let mut exe = cpu.load(&plan, weights)?;
    let mut cal = Calibrator::new(req.method, &observation);
    let mut samples = 0u64;
    for sample in set.iter().take(req.max_samples.unwrap_or(usize::MAX)) {
        let kiln_quant::Sample { name, inputs } = sample.map_err(kiln_quant::QuantError::from)?;
        let outputs = exe.run(inputs).map_err(|e| PipelineError::Calibration(format!("calibration sample {name}: {e}")))?;
        cal.observe_outputs(outputs.iter().filter(|(n, _)| observation.values.contains(n)).map(|(n, t)| (n.as_str(), t)))?;
        samples += 1;
    }
    let observer_bytes = cal.memory_bytes();
    let ranges = cal.finish()?;
    Ok((ranges, CalibrationRun { samples, time: started.elapsed(), observer_bytes }))
}
