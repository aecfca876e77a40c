//! `kiln validate`: accuracy against the reference executor, latency, memory, cost and compile
//! time of an artifact; gates; the report written beside the artifact as an attestation.

use crate::artifact::{read_manifest, read_statement};
use crate::cost;
use crate::inputs::{self, Declared};
use anyhow::{Context, bail};
use kiln_report::stats::{ErrorStats, percentile, spread};
use kiln_report::{Accuracy, ArtifactInfo, Figure, Latency, OutputAccuracy, PrecisionRow, Report, Stage, gate};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Validation settings shared by `kiln validate` and `kiln compile`.
#[derive(clap::Args, Clone, Default)]
pub struct Opts {
    /// A gate, METRIC OP VALUE[UNIT] (repeatable): 'accuracy.cosine>=0.99', 'latency.p99<=20ms',
    /// 'cost.per_million<=0.50'; with --baseline, relative: 'latency.p50<=+5%'.
    #[arg(long = "gate", value_name = "GATE")]
    pub gates: Vec<String>,
    /// A previous artifact (validated) to compare with; adds regression gates
    /// (latency.p50<=+5%, accuracy.cosine>=-0.1%) when no relative gate is given.
    #[arg(long, value_name = "ARTIFACT")]
    pub baseline: Option<PathBuf>,
    /// Batch sizes to time, e.g. 1,8 (binds the first input's leading symbolic dim).
    #[arg(long = "batch", value_delimiter = ',', value_name = "N,...")]
    pub batches: Vec<usize>,
    /// Timed runs per batch size (default 20).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Untimed warm-up runs before them (default 3).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Seeded random input sets compared with the reference (default 2).
    #[arg(long)]
    pub samples: Option<usize>,
    /// A folder of inputs (one sub-folder per sample holding INPUT.npy files) and, optionally,
    /// labels.txt (one class index per line, samples in name order) for task accuracy.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Machine price in $/hour for cost figures (default: the target's price table).
    #[arg(long, value_name = "DOLLARS")]
    pub price_per_hour: Option<f64>,
    /// Power draw in watts for the energy estimate (default: the target's table).
    #[arg(long, value_name = "WATTS")]
    pub power_watts: Option<f64>,
}

/// What a validation needs besides the options.
pub struct Job<'a> {
    pub artifact: &'a Path,
    pub model: &'a Path,
    pub weights: Option<&'a Path>,
    pub key: Option<&'a kiln_artifact::KeyPair>,
    pub quiet: bool,
    /// Overrides of the price table from kiln.toml.
    pub cost: BTreeMap<String, cost::Price>,
}

/// Gate failures: the report was written, the exit code says no.
#[derive(Debug)]
pub struct GatesFailed(pub Vec<String>);

impl std::fmt::Display for GatesFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} gate(s) failed:", self.0.len())?;
        for g in &self.0 {
            write!(f, "\n  {g}")?;
        }
        Ok(())
    }
}
impl std::error::Error for GatesFailed {}

fn rss_bytes() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

fn bar(quiet: bool, len: u64, msg: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len}") {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(msg.to_string());
    b
}

/// Input sets, labels when given, and where the inputs came from.
type Samples = (Vec<Vec<(String, kiln_tensor::Tensor)>>, Option<Vec<usize>>, String);

/// Input sets from `--data` (with labels) or seeded random ones.
fn samples(declared: &[Declared], dims: &[(String, usize)], o: &Opts, bounds: &BTreeMap<String, usize>) -> anyhow::Result<Samples> {
    if let Some(dir) = &o.data {
        let mut subs: Vec<PathBuf> = std::fs::read_dir(dir).with_context(|| format!("--data {}", dir.display()))?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        subs.sort();
        if subs.is_empty() {
            bail!("--data {}: no sample folders (expected one folder per sample holding INPUT.npy files)", dir.display());
        }
        let mut sets = Vec::new();
        for s in &subs {
            let files: Vec<(String, PathBuf)> = declared.iter().map(|(n, _, _)| (n.clone(), s.join(format!("{n}.npy")))).collect();
            sets.push(inputs::build(declared, &files, dims, false, 0, bounds).with_context(|| format!("sample {}", s.display()))?.0);
        }
        let labels = match std::fs::read_to_string(dir.join("labels.txt")) {
            Err(_) => None,
            Ok(t) => {
                let l: Vec<usize> = t.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().parse::<usize>().with_context(|| format!("labels.txt: '{l}' is not a class index"))).collect::<anyhow::Result<_>>()?;
                if l.len() != sets.len() {
                    bail!("labels.txt has {} labels for {} samples", l.len(), sets.len());
                }
                Some(l)
            }
        };
        return Ok((sets, labels, format!("folder {} ({} samples)", dir.display(), subs.len())));
    }
    let n = o.samples.unwrap_or(2).max(1);
    let sets = (0..n as u64).map(|seed| inputs::build(declared, &[], dims, true, seed, bounds).map(|f| f.0)).collect::<anyhow::Result<_>>()?;
    Ok((sets, None, format!("seeded random, seeds 0..{n}")))
}

/// The name of the batch dimension: the first input's leading symbolic dim.
fn batch_dim(declared: &[Declared]) -> Option<String> {
    match declared.first()?.2.as_ref()?.0.first()? {
        kiln_tensor::Dim::Sym(s) => Some(s.clone()),
        kiln_tensor::Dim::Known(_) => None,
    }
}

/// Runs the validation and returns the report (gates evaluated, nothing written).
pub fn measure(job: &Job, o: &Opts) -> anyhow::Result<Report> {
    let (manifest, digest) = read_manifest(job.artifact)?;
    let source = kiln_artifact::source_digest(job.model)?;
    if source != manifest.source.sha256 {
        bail!("{} is not the model {} was built from (sha256 {source}, the manifest says {})", job.model.display(), job.artifact.display(), manifest.source.sha256);
    }
    let gates: Vec<gate::Gate> = o.gates.iter().map(|g| gate::parse(g)).collect::<Result<_, _>>()?;
    let device = kiln_target_cpu::device::description();
    let mut exe = crate::load::runnable(job.artifact)?;
    let kiln_pipeline::Runnable::Plan { plan, .. } = &exe else { bail!("{} holds no plan", job.artifact.display()) };
    let mut precision: BTreeMap<(String, String), u64> = BTreeMap::new();
    for s in &plan.steps {
        // The precision a step computes in (f16 on a wgpu plan, int8, a weight-only type) when
        // the target marked it; else its output's element type.
        let dt = match s.attrs.get(kiln_target::PRECISION_ATTR) {
            Some(kiln_target::AttrValue::String(p)) => p.clone(),
            _ => s.outputs.iter().flatten().next().map(|&v| plan.values[v].dtype.clone()).unwrap_or_default(),
        };
        *precision.entry((s.kernel.clone(), dt)).or_default() += 1;
    }
    let mut report = Report::new(ArtifactInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        digest: digest.clone(),
        target: manifest.target.get("kind").cloned().unwrap_or_default(),
        device: manifest.target.get("device").cloned().unwrap_or_default(),
        precision: manifest.precision.clone(),
        bytes: manifest.total_bytes() + std::fs::metadata(job.artifact.join("manifest.json")).map(|m| m.len()).unwrap_or(0),
    });
    report.precision_map = precision.into_iter().map(|((kernel, precision), steps)| PrecisionRow { kernel, precision, steps }).collect();
    let declared = exe.inputs();
    let dims: Vec<(String, usize)> = manifest.build.dims.iter().map(|(k, v)| (k.clone(), *v)).collect();

    // Accuracy against the reference executor on the source model.
    let mut reference = crate::load::runnable_with(job.model, job.weights)?;
    let bounds = reference.index_bounds();
    let (sets, labels, how) = samples(&declared, &dims, o, &bounds)?;
    let pb = bar(job.quiet, sets.len() as u64, "accuracy vs reference");
    let mut stats: BTreeMap<String, ErrorStats> = BTreeMap::new();
    let mut correct = 0u64;
    for (i, feeds) in sets.iter().enumerate() {
        let want = reference.run(feeds.clone()).context("running the reference executor on the source model")?;
        let got = exe.run(feeds.clone()).context("running the artifact")?;
        for (idx, (name, w)) in want.iter().enumerate() {
            let (Some(w), Some(g)) = (w.as_tensor(), got.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_tensor())) else { continue };
            let (Ok(wv), Ok(gv)) = (w.to_f64_vec(), g.to_f64_vec()) else { continue };
            let bad = wv.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                bail!(
                    "output '{name}': the reference executor gives {bad} non-finite values (NaN or infinity) on sample {} ({how}), so accuracy cannot be measured on it: validate with real inputs (--data DIR), or compile with --no-validate",
                    i + 1
                );
            }
            if wv.len() != gv.len() {
                bail!("output '{name}': the artifact gives {:?}, the reference {:?}", g.shape(), w.shape());
            }
            let row = w.shape().last().copied().unwrap_or(1).max(1);
            stats.entry(name.clone()).or_default().add(&wv, &gv, row);
            if idx == 0
                && let Some(l) = &labels
            {
                correct += u64::from(kiln_report::stats::argmax(&gv[..row.min(gv.len())]) == l[i]);
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let n = sets.len() as u64;
    let acc = |v: f64, unit: &str| Figure::measured(v, unit, &device, n, 0.0);
    report.accuracy = Some(Accuracy {
        reference: "Kiln's reference executor on the source model".into(),
        samples: n,
        inputs: how,
        outputs: stats
            .iter()
            .map(|(name, s)| OutputAccuracy {
                name: name.clone(),
                max_abs: acc(s.max_abs, "abs"),
                max_rel: acc(s.max_rel, "abs"),
                cosine: acc(s.cosine(), "ratio"),
                top1: s.ranked.then(|| acc(s.top1 as f64 / s.rows.max(1) as f64, "ratio")),
                top5: s.ranked.then(|| acc(s.top5 as f64 / s.rows.max(1) as f64, "ratio")),
            })
            .collect(),
        task: labels.map(|_| acc(correct as f64 / n as f64, "ratio")),
    });
    drop(reference);

    // Latency at each batch size.
    let runs = o.runs.unwrap_or(20).max(1);
    let warmup = o.warmup.unwrap_or(3);
    let batches = if o.batches.is_empty() { vec![1] } else { o.batches.clone() };
    let bdim = batch_dim(&declared);
    for &b in &batches {
        let mut d = dims.clone();
        match &bdim {
            Some(name) => {
                d.retain(|(k, _)| k != name);
                d.push((name.clone(), b));
            }
            None if b != 1 => bail!("--batch {b}: the model's first input has no symbolic leading dimension to bind"),
            None => {}
        }
        let feeds = inputs::build(&declared, &[], &d, true, 0, &bounds)?.0;
        for _ in 0..warmup {
            exe.run(feeds.clone())?;
        }
        let pb = bar(job.quiet, runs as u64, &format!("latency batch {b}"));
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let f = feeds.clone();
            let t = std::time::Instant::now();
            exe.run(f)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            pb.inc(1);
        }
        pb.finish_and_clear();
        let mut sorted = ms.clone();
        sorted.sort_by(f64::total_cmp);
        let sp = spread(&sorted);
        let f = |v: f64, unit: &str| Figure::measured(v, unit, &device, runs as u64, sp);
        let p50 = percentile(&sorted, 0.5);
        report.latency.push(Latency {
            batch: b as u64,
            warmup: warmup as u64,
            min: f(sorted[0], "ms"),
            p50: f(p50, "ms"),
            p90: f(percentile(&sorted, 0.9), "ms"),
            p99: f(percentile(&sorted, 0.99), "ms"),
            max: f(sorted[sorted.len() - 1], "ms"),
            throughput: f(b as f64 * 1e3 / p50.max(1e-9), "1/s"),
            samples_ms: ms,
        });
    }
    report.memory.planned_peak = exe.planned_peak_bytes().map(|b| Figure::estimated(b as f64, "bytes", "the executable's memory plan: intermediate buffers, weights excluded"));
    report.memory.process_peak_rss = rss_bytes().map(|b| Figure::measured(b, "bytes", &device, (runs * batches.len()) as u64, 0.0));
    let kind = report.artifact.target.clone();
    if let Some(l) = report.latency.first() {
        report.cost = Some(cost::cost(&kind, &job.cost, o, l.p50.value, l.batch, &l.p50));
    }
    // Compile time per stage, from the build attestation.
    if let Some(st) = read_statement(job.artifact, "build.intoto.json")? {
        let on = st.predicate["measured_on"].as_str().unwrap_or("unknown").to_string();
        for p in st.predicate["phases_ms"].as_array().into_iter().flatten() {
            if let (Some(name), Some(ms)) = (p["phase"].as_str(), p["ms"].as_f64()) {
                report.compile.push(Stage { name: name.into(), time: Figure::measured(ms, "ms", &on, 1, 0.0) });
            }
        }
    }
    // Gates.
    let baseline = match &o.baseline {
        None => None,
        Some(b) => Some(crate::diff::report_of(b)?.with_context(|| format!("--baseline {}: no validation report beside it (run `kiln validate` on it first)", b.display()))?),
    };
    let mut gates = gates;
    if baseline.is_some() && !gates.iter().any(|g| matches!(g.threshold, gate::Threshold::Relative(_))) {
        for g in gate::DEFAULT_REGRESSION_GATES {
            gates.push(gate::parse(g)?);
        }
    }
    report.gates = gates.iter().map(|g| gate::evaluate(g, &report, baseline.as_ref())).collect();
    Ok(report)
}

/// Writes the report beside the artifact: the signed attestation and its renderings
/// (`<ARTIFACT>.attestations/report/report.{json,md,html,xml}`).
pub fn write(job: &Job, report: &Report) -> anyhow::Result<PathBuf> {
    let st = kiln_artifact::statement(&report.artifact.name, &report.artifact.digest, kiln_report::PREDICATE_TYPE, serde_json::to_value(report)?);
    kiln_artifact::write_attestation(job.artifact, "validation.intoto.json", &kiln_artifact::Envelope::new(&st, job.key))?;
    let dir = kiln_artifact::attestations_dir(job.artifact).join("report");
    use kiln_report::render;
    for (name, text) in [("report.json", render::json(report)), ("report.md", render::markdown(report)), ("report.html", render::html(report)), ("report.xml", render::junit(report))] {
        kiln_artifact::write_atomic(&dir.join(name), text.as_bytes())?;
    }
    Ok(dir)
}

/// A short text summary.
pub fn print(report: &Report, dir: &Path) {
    if let Some(a) = &report.accuracy {
        for o in &a.outputs {
            println!("accuracy {}: cosine {}, max abs {:.3e}, max rel {:.3e} ({} samples vs the reference executor)", o.name, gate::show(gate::Kind::Ratio, o.cosine.value), o.max_abs.value, o.max_rel.value, a.samples);
        }
        if let Some(t) = &a.task {
            println!("task accuracy: {:.4}", t.value);
        }
    }
    for l in &report.latency {
        println!(
            "latency batch {} (measured, {} runs): min {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3} ms, {:.1}/s",
            l.batch,
            l.samples_ms.len(),
            l.min.value,
            l.p50.value,
            l.p90.value,
            l.p99.value,
            l.max.value,
            l.throughput.value
        );
    }
    if let Some(c) = &report.cost {
        println!("cost (estimated from measured p50): ${:.4} per million inferences at ${}/h; energy {:.4} J/inference (estimated, {} W)", c.per_million.value, c.price_per_hour, c.energy_per_inference.value, c.power_watts);
    }
    for g in &report.gates {
        println!("gate {}: {}", g.gate, g.message);
    }
    println!("report: {}/report.html", dir.display());
}

/// The gate verdict as the exit status.
pub fn verdict(report: &Report) -> anyhow::Result<()> {
    let failed: Vec<String> = report.gates.iter().filter(|g| !g.passed).map(|g| format!("{}: {}", g.gate, g.message)).collect();
    if failed.is_empty() { Ok(()) } else { Err(GatesFailed(failed).into()) }
}

/// Validate an artifact: accuracy against the reference executor on the source model, latency
/// at the batch sizes asked, peak memory, cost and energy (estimated from a price table and a
/// power figure), compile time per stage; evaluate gates. The report is written beside the
/// artifact (`ARTIFACT.attestations/`) even when a gate fails; a failed gate exits with 2.
///
/// Example: kiln validate model.kiln --model model.onnx --gate 'latency.p99<=20ms'
#[derive(clap::Args)]
pub struct Args {
    /// The artifact folder (from `kiln compile`).
    artifact: PathBuf,
    /// The source model it was built from (checked against the manifest's digest).
    #[arg(long)]
    model: PathBuf,
    /// The --weights checkpoint the artifact was compiled with, if any.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    opts: Opts,
    /// Sign the validation attestation with this secret key (from `kiln keygen`).
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let key = a.sign.as_deref().map(kiln_artifact::read_secret_key).transpose()?;
    let job = Job { artifact: &a.artifact, model: &a.model, weights: a.weights.as_deref(), key: key.as_ref(), quiet: a.quiet || a.json, cost: BTreeMap::new() };
    let report = measure(&job, &a.opts)?;
    let dir = write(&job, &report)?;
    if a.json {
        print!("{}", kiln_report::render::json(&report));
    } else if !a.quiet {
        print(&report, &dir);
    }
    verdict(&report)
}
