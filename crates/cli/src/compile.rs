use anyhow::Context;
use kiln_target::{CompileOptions, TuneMode};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Precision {
    /// Float as the model has it.
    F32,
    /// int8 weights (per channel, symmetric) and activations: static with --calib, else dynamic.
    Int8,
    /// int4 weights, group-wise along K (--group-size), float activations: round-to-nearest,
    /// or GPTQ with --weight-method gptq --calib DIR.
    Int4,
    /// fp16 weights, float activations (converted on the fly).
    Fp16,
    /// bf16 weights; activations in bf16 too where the target computes bf16 x bf16 (CPUs with
    /// AVX512-BF16), else float.
    Bf16,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum WeightMethod {
    /// Round-to-nearest, each value on its own (no data needed).
    Rtn,
    /// GPTQ: rounding errors compensated through the calibration activations (needs --calib).
    Gptq,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Method {
    /// The exact range seen.
    Minmax,
    /// The range holding 99.99% of the values.
    Percentile,
    /// The threshold of least KL divergence (TensorRT's entropy calibration).
    Entropy,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Tune {
    /// Every kernel takes its default candidate.
    Off,
    /// Use recorded tuning decisions; measure nothing.
    Cache,
    /// Use recorded decisions and measure kernels without one, within --tune-budget.
    Full,
}

/// Compile a model for a target: import, optimize, lower (choosing kernels, tuned on this
/// machine), write a versioned artifact folder (manifest with a sha256 per file; `kiln run` and
/// `kiln bench` execute it), its provenance and build attestations beside it
/// (`DIR.attestations/`), then validate it against the reference executor and apply gates
/// (unless --no-validate). A failed gate still writes the report and exits with 2.
///
/// Example: kiln compile model.onnx -o model.kiln --tune off --gate 'latency.p99<=20ms'
/// Example: kiln compile --config kiln.toml
#[derive(clap::Args)]
pub struct Args {
    /// The model: .onnx, a Hugging Face folder (config.json + safetensors), or a .safetensors file.
    model: Option<PathBuf>,
    /// A build file (kiln.toml); flags given here override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Replace the model's initializers by name with this safetensors checkpoint's tensors.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// The hardware target (default cpu).
    #[arg(long)]
    target: Option<String>,
    /// The artifact folder to write (replaced atomically if it holds a previous artifact).
    /// Without it the artifact goes to the local store only.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    out: Option<PathBuf>,
    /// The local OCI store every compile adds its artifact to (default: `store` in kiln.toml,
    /// else $KILN_STORE, else ~/.local/share/kiln/store); `kiln ls` lists it.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Do not add the artifact to the local store.
    #[arg(long, conflicts_with = "store")]
    no_store: bool,
    /// The artifact's name (default: the model's file name without extension).
    #[arg(long)]
    name: Option<String>,
    /// The artifact's semantic version (default 0.1.0).
    #[arg(long = "artifact-version", value_name = "SEMVER")]
    artifact_version: Option<String>,
    /// Precision: f32 (default), int8 (weights and activations; see --calib), or weight-only
    /// int4, fp16, bf16.
    #[arg(long, value_enum)]
    precision: Option<Precision>,
    /// int4: rows of K sharing one scale and zero point (0: one per column).
    #[arg(long, value_name = "G")]
    group_size: Option<usize>,
    /// int4: how weights are rounded.
    #[arg(long, value_enum)]
    weight_method: Option<WeightMethod>,
    /// Calibration data for int8 (and GPTQ): a folder of .npz files (one sample each, arrays named by graph
    /// input) or of <input>_<n>.npy files. Without it int8 is dynamic (data-free, flagged).
    #[arg(long, value_name = "DIR")]
    calib: Option<PathBuf>,
    /// How activation ranges are chosen from the calibration data.
    #[arg(long, value_enum)]
    calib_method: Option<Method>,
    /// Read at most this many calibration samples.
    #[arg(long, value_name = "N")]
    calib_samples: Option<usize>,
    /// Accuracy budget for the quantized precision, as METRIC=DROP: cosine=0.01 (mean cosine to the f32 outputs at
    /// least 0.99), top1=0.5 (top-1 agreement with f32 at least 99.5%) or accuracy=0.5 (top-1
    /// accuracy against --labels at most 0.5 points below f32's). The layers that harm it most
    /// stay f32 until it holds; every layer's precision and why is printed.
    #[arg(long, value_name = "METRIC=DROP", value_parser = kiln_pipeline::mixed::Budget::parse)]
    max_accuracy_drop: Option<kiln_pipeline::mixed::Budget>,
    /// Samples the accuracy budget is measured on (same layout as --calib; default: the first
    /// 8 calibration samples).
    #[arg(long, value_name = "DIR", requires = "max_accuracy_drop")]
    eval_data: Option<PathBuf>,
    /// Class ids (.npy of integers), one per row of the evaluation samples' first output in
    /// file order: the labels of an accuracy=DROP budget.
    #[arg(long, value_name = "FILE", requires = "max_accuracy_drop")]
    labels: Option<PathBuf>,
    /// SmoothQuant before static int8 (needs --calib): per input channel of each MatMul,
    /// activation range moved into the weights with strength ALPHA in [0, 1] (default 0.5);
    /// folded into the producing LayerNorm/MatMul where it can be, else an inserted Mul.
    #[arg(long, value_name = "ALPHA", num_args = 0..=1, default_missing_value = "0.5")]
    smoothquant: Option<f32>,
    /// Emit the quantized plan even when it measures slower than the f32 plan (the latency
    /// guard otherwise keeps slower layers, or the whole plan, in f32 and says so).
    #[arg(long)]
    force_precision: bool,
    /// Also write the quantized graph as ONNX that onnxruntime runs: QuantizeLinear/
    /// DequantizeLinear pairs for int8; f16/bf16 initializers behind Cast, or int4 behind
    /// blocked DequantizeLinear (opset 21), for weight-only precisions.
    #[arg(long, value_name = "FILE")]
    export_qdq: Option<PathBuf>,
    /// Kernel tuning: off, cache (recorded decisions only) or full (measure what is not recorded).
    #[arg(long, value_enum)]
    tune: Option<Tune>,
    /// Time budget for measuring kernel candidates, e.g. 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    tune_budget: Duration,
    /// Tuning-record folder (default: $KILN_CACHE_DIR, else ~/.cache/kiln/tune).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Stop after a phase and print the IR at that point instead of writing an artifact.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(kiln_pipeline::phases()))]
    stop_after: Option<String>,
    /// Bind a symbolic dimension for tuning, as NAME=SIZE (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = crate::inputs::parse_dim)]
    dims: Vec<(String, usize)>,
    /// Sign the artifact digest and its attestations with this secret key (`kiln keygen`).
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Also write a single-file archive of the artifact and its attestations, DIR.tar.
    #[arg(long)]
    archive: bool,
    /// Skip validation (and gates).
    #[arg(long)]
    no_validate: bool,
    #[command(flatten)]
    validate: crate::validate::Opts,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.trim().split_at(s.trim().find(|c: char| c.is_alphabetic()).unwrap_or(s.trim().len()));
    let n: f64 = num.parse().map_err(|_| format!("'{s}' is not a duration like 30s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1e3,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("'{s}': unit must be ms, s or m")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Serialize)]
struct Report {
    model: String,
    target: kiln_target::TargetId,
    output: Option<String>,
    /// sha256 of the artifact's manifest.
    digest: String,
    /// Measured wall time per phase, milliseconds.
    phases_ms: Vec<(String, f64)>,
    steps: usize,
    kernels: std::collections::BTreeMap<String, usize>,
    /// Steps that say their precision (f16 plans), per precision and kernel.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    precision: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
    /// Notes the target put on layers that do not run as asked (note -> nodes).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    precision_notes: std::collections::BTreeMap<String, Vec<String>>,
    /// Why f16 was asked for and not given (the plan is f32).
    #[serde(skip_serializing_if = "Option::is_none")]
    precision_refused: Option<String>,
    weight_bytes: u64,
    /// Rewrites made by the graph passes, counted per pass.
    passes: std::collections::BTreeMap<String, usize>,
    tuning: Vec<kiln_target::TuneDecision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation: Option<kiln_report::Report>,
}

/// Flags over kiln.toml over defaults.
struct Resolved {
    model: PathBuf,
    weights: Option<PathBuf>,
    target: String,
    out: Option<PathBuf>,
    store: Option<PathBuf>,
    name: String,
    version: String,
    tune: Tune,
    dims: std::collections::BTreeMap<String, usize>,
    sign: Option<PathBuf>,
    archive: bool,
    validate: bool,
    opts: crate::validate::Opts,
    cost: std::collections::BTreeMap<String, crate::cost::Price>,
    quant: Option<kiln_pipeline::QuantRequest>,
    /// f16 compute on the device (`--precision fp16` on a target that computes in f16).
    float: kiln_target::FloatPrecision,
}

fn resolve(a: &Args) -> anyhow::Result<Resolved> {
    let bf = match &a.config {
        Some(p) => crate::buildfile::read(p)?,
        None => crate::buildfile::BuildFile::default(),
    };
    let model = a.model.clone().or(bf.model.clone()).context("give the model (kiln compile MODEL) or a --config kiln.toml naming it")?;
    if bf.targets.len() > 1 && a.target.is_none() {
        anyhow::bail!("kiln.toml lists targets {:?}: this Kiln compiles one per run; pick one with --target", bf.targets);
    }
    let target = a.target.clone().or(bf.targets.first().cloned()).unwrap_or_else(|| "cpu".into());
    let (quant, float) = resolve_quant(a, &bf, &target)?;
    let tune = match (a.tune, bf.tune.as_deref()) {
        (Some(t), _) => t,
        (None, None) => Tune::Cache,
        (None, Some(t)) => <Tune as clap::ValueEnum>::from_str(t, true)
            .map_err(|_| anyhow::anyhow!("kiln.toml: tune = '{t}' is not off, cache or full"))?,
    };
    let mut dims = bf.dims.clone();
    dims.extend(a.dims.iter().cloned());
    let v = bf.validate.unwrap_or_default();
    let mut opts = a.validate.clone();
    if opts.gates.is_empty() {
        opts.gates = bf.gates.clone();
    }
    opts.baseline = opts.baseline.or(bf.baseline.clone());
    if opts.batches.is_empty() {
        opts.batches = v.batch.clone();
    }
    opts.runs = opts.runs.or(v.runs);
    opts.warmup = opts.warmup.or(v.warmup);
    opts.samples = opts.samples.or(v.samples);
    opts.data = opts.data.or(v.data.clone());
    let name = a.name.clone().or(bf.name.clone()).unwrap_or_else(|| {
        let n = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
        n.strip_suffix(".onnx").or(n.strip_suffix(".safetensors")).unwrap_or(&n).to_string()
    });
    Ok(Resolved {
        weights: a.weights.clone().or(bf.weights.clone()),
        target,
        out: a.out.clone().or(bf.output.clone()),
        store: if a.no_store { None } else { Some(a.store.clone().or(bf.store.clone()).unwrap_or_else(kiln_registry::default_store_path)) },
        name,
        version: a.artifact_version.clone().or(bf.version.clone()).unwrap_or_else(|| "0.1.0".into()),
        tune,
        dims,
        sign: a.sign.clone().or(bf.sign.clone()),
        archive: a.archive || bf.archive.unwrap_or(false),
        validate: !a.no_validate && v.enabled.unwrap_or(true),
        opts,
        cost: bf.cost,
        model,
        quant,
        float,
    })
}

fn precision_name(p: Precision) -> String {
    clap::ValueEnum::to_possible_value(&p).map(|v| v.get_name().to_string()).unwrap_or_default()
}

/// --precision / --calib* over kiln.toml's `precisions` and `[calibration]`: the quantization
/// to run, or f16 compute on a target that has it (no graph rewrite).
fn resolve_quant(
    a: &Args,
    bf: &crate::buildfile::BuildFile,
    target: &str,
) -> anyhow::Result<(Option<kiln_pipeline::QuantRequest>, kiln_target::FloatPrecision)> {
    if bf.precisions.len() > 1 && a.precision.is_none() {
        anyhow::bail!("kiln.toml lists precisions {:?}: this Kiln compiles one per run; pick one with --precision", bf.precisions);
    }
    let precision = match (a.precision, bf.precisions.first().map(String::as_str)) {
        (Some(p), _) => p,
        (None, None | Some("f32")) => Precision::F32,
        (None, Some(p)) => <Precision as clap::ValueEnum>::from_str(p, true)
            .map_err(|_| anyhow::anyhow!("kiln.toml: precision '{p}' is not f32, int8, int4, fp16 or bf16"))?,
    };
    let cal = bf.calibration.as_ref();
    let data = a.calib.clone().or(cal.and_then(|c| c.data.clone()));
    let qt = bf.quantize.as_ref();
    let group_size = a.group_size.or(qt.and_then(|q| q.group_size));
    let weight_method = match (a.weight_method, qt.and_then(|q| q.weight_method.as_deref())) {
        (Some(m), _) => Some(m),
        (None, None) => None,
        (None, Some(m)) => Some(
            <WeightMethod as clap::ValueEnum>::from_str(m, true)
                .map_err(|_| anyhow::anyhow!("kiln.toml: quantize.weight_method = '{m}' is not rtn or gptq"))?,
        ),
    };
    let smoothquant = a.smoothquant.or(qt.and_then(|q| q.smoothquant));
    if precision == Precision::F32 {
        if a.calib.is_some() || a.export_qdq.is_some() || a.max_accuracy_drop.is_some() || smoothquant.is_some() {
            anyhow::bail!(
                "--calib, --max-accuracy-drop, --smoothquant and --export-qdq are for a quantized --precision (int8, int4, fp16, bf16)"
            );
        }
        if data.is_some() && !a.quiet {
            eprintln!("note: calibration data {:?} is unused: f32 builds need no calibration", data.unwrap_or_default());
        }
        return Ok((None, kiln_target::FloatPrecision::F32));
    }
    if precision == Precision::Fp16 && kiln_pipeline::computes_f16(target) {
        if a.calib.is_some() || a.export_qdq.is_some() || a.max_accuracy_drop.is_some() || a.force_precision {
            anyhow::bail!(
                "--precision fp16 on the {target} target stores and computes the layers in f16 on the device: --calib, --max-accuracy-drop, --force-precision and --export-qdq are for quantized precisions"
            );
        }
        return Ok((None, kiln_target::FloatPrecision::F16));
    }
    let method = match (a.calib_method, cal.and_then(|c| c.method.as_deref())) {
        (Some(m), _) => m,
        (None, None) => Method::Minmax,
        (None, Some(m)) => <Method as clap::ValueEnum>::from_str(m, true)
            .map_err(|_| anyhow::anyhow!("kiln.toml: calibration.method = '{m}' is not minmax, percentile or entropy"))?,
    };
    let method = match method {
        Method::Minmax => kiln_quant::CalibMethod::MinMax,
        Method::Percentile => kiln_quant::CalibMethod::Percentile { percentile: 99.99, symmetric: false },
        Method::Entropy => kiln_quant::CalibMethod::Entropy { symmetric: false },
    };
    if precision != Precision::Int4 && (group_size.is_some() || weight_method.is_some()) {
        anyhow::bail!("--group-size and --weight-method are for --precision int4");
    }
    if smoothquant.is_some() && precision != Precision::Int8 {
        anyhow::bail!("--smoothquant prepares activations for int8; --precision {} keeps float activations", precision_name(precision));
    }
    if weight_method == Some(WeightMethod::Gptq) && data.is_none() {
        anyhow::bail!("--weight-method gptq compensates rounding errors with calibration activations: give --calib DIR (or use rtn)");
    }
    if let Some(alpha) = smoothquant {
        if !(0.0..=1.0).contains(&alpha) {
            anyhow::bail!("--smoothquant {alpha}: alpha must be in [0, 1] (0.5 is the usual choice)");
        }
        if data.is_none() {
            anyhow::bail!("--smoothquant scales activations by their calibrated per-channel maxima: give --calib DIR");
        }
    }
    if a.max_accuracy_drop.is_some_and(|b| b.needs_labels()) && a.labels.is_none() {
        anyhow::bail!(
            "--max-accuracy-drop accuracy=.. is measured against labels: give --labels FILE.npy (one class id per evaluated row)"
        );
    }
    for p in [&a.eval_data, &a.labels].into_iter().flatten() {
        if !p.exists() {
            anyhow::bail!("{} does not exist", p.display());
        }
    }
    if let Some(d) = &data
        && !d.exists()
    {
        anyhow::bail!(
            "calibration data {} does not exist (give a folder of .npz/.npy samples, or leave it out for dynamic int8)",
            d.display()
        );
    }
    let weights = |format| kiln_quant::WeightOnlyOptions { format, ..kiln_quant::WeightOnlyOptions::default() };
    let scheme = match precision {
        Precision::F32 | Precision::Int8 => kiln_pipeline::Scheme::Int8,
        Precision::Int4 => kiln_pipeline::Scheme::WeightOnly(kiln_quant::WeightOnlyOptions {
            group_size: group_size.unwrap_or(32),
            method: match weight_method {
                Some(WeightMethod::Gptq) => kiln_quant::Rounding::Gptq,
                Some(WeightMethod::Rtn) | None => kiln_quant::Rounding::Rtn,
            },
            ..weights(kiln_quant::WeightFormat::Int4)
        }),
        Precision::Fp16 => kiln_pipeline::Scheme::WeightOnly(weights(kiln_quant::WeightFormat::F16)),
        Precision::Bf16 => kiln_pipeline::Scheme::WeightOnly(kiln_quant::WeightOnlyOptions {
            compute_bf16: kiln_pipeline::computes_bf16(target),
            ..weights(kiln_quant::WeightFormat::BF16)
        }),
    };
    Ok((
        Some(kiln_pipeline::QuantRequest {
            scheme,
            calibration: data.map(kiln_pipeline::CalibSource::Path),
            max_samples: a.calib_samples.or(cal.and_then(|c| c.samples)),
            method,
            options: kiln_quant::QuantOptions::default(),
            force: a.force_precision,
            budget: a.max_accuracy_drop,
            eval: a.eval_data.clone().map(kiln_pipeline::CalibSource::Path),
            labels: a.labels.clone(),
            smooth: smoothquant.map(|alpha| kiln_quant::SmoothOptions { alpha, insert_mul: true, ..kiln_quant::SmoothOptions::default() }),
        }),
        kiln_target::FloatPrecision::F32,
    ))
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let r = resolve(&a)?;
    let target = kiln_pipeline::target(&r.target)?;
    if let kiln_target::Availability::Unavailable { reason, remedy } = target.probe() {
        anyhow::bail!("target {} is not available here: {reason} ({remedy})", r.target);
    }
    if r.archive && r.out.is_none() {
        anyhow::bail!("--archive needs -o DIR (the archive is written beside it as DIR.tar)");
    }
    let key = r.sign.as_deref().map(kiln_artifact::read_secret_key).transpose()?;
    // Parse gates before spending time compiling.
    for g in &r.opts.gates {
        kiln_report::gate::parse(g)?;
    }
    let opts = CompileOptions {
        tune: match r.tune {
            Tune::Off => TuneMode::Off,
            Tune::Cache => TuneMode::Cache,
            Tune::Full => TuneMode::Full,
        },
        tune_budget: a.tune_budget,
        cache_dir: a.cache_dir.clone().or_else(kiln_pipeline::default_cache_dir),
        threads: None,
        dims: r.dims.clone(),
        tuning_shapes: Default::default(),
        float: r.float,
    };
    // f16 asked for where the device cannot: said here, and the plan stays f32.
    let f16_refused = (r.float == kiln_target::FloatPrecision::F16).then(|| kiln_pipeline::f16_support(&r.target).err()).flatten();
    if !r.model.exists() {
        anyhow::bail!("{} does not exist", r.model.display());
    }
    let spinner = if a.quiet || a.json || a.stop_after.is_some() {
        indicatif::ProgressBar::hidden()
    } else {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!(
            "compiling {} (import, optimize, lower{})",
            r.model.display(),
            if r.tune == Tune::Full { ", tune" } else { "" }
        ));
        s.enable_steady_tick(Duration::from_millis(120));
        s
    };
    let started = std::time::Instant::now();
    let (model, _) = kiln_pipeline::load_model(&r.model, &target.coverage(), r.weights.as_deref())
        .map(|(m, rep)| {
            if let (Some(rep), Some(w)) = (&rep, &r.weights) {
                crate::load::print_rebind(w, rep);
            }
            (m, rep)
        })
        .with_context(|| format!("cannot import {}", r.model.display()))?;
    let import = started.elapsed();
    let compiled = kiln_pipeline::compile_model_with(model, target.as_ref(), &opts, a.stop_after.as_deref(), r.quant.as_ref())
        .map(|mut c| {
            c.phase_times.insert(0, ("import", import));
            c
        })
        .with_context(|| format!("cannot compile {}", r.model.display()))?;
    spinner.finish_and_clear();
    if let Some(phase) = &a.stop_after {
        println!("# IR after phase '{phase}'");
        print!("{}", kiln_ir::dump(&compiled.model));
        return Ok(());
    }
    if let Some(q) = &compiled.quantized {
        if !a.json && !a.quiet {
            if let Some(sm) = &q.smooth {
                print!("{sm}");
            }
            print!("{}", q.summary);
            if let Some(c) = &q.calibration {
                println!(
                    "calibration (measured): {} samples in {:.2} s, observers hold {} bytes",
                    c.samples,
                    c.time.as_secs_f64(),
                    c.observer_bytes
                );
            }
            if let Some(m) = &q.mixed {
                print_mixed(m, q.recipe.precision());
            }
            match &q.latency {
                None => {
                    println!("latency guard: off (--force-precision): the {} plan is emitted unmeasured against f32", q.recipe.precision())
                }
                Some(l) => print_latency(l),
            }
        }
        if let Some(path) = &a.export_qdq {
            kiln_onnx::export(&q.qdq, path, &kiln_onnx::ExportOptions::default())
                .with_context(|| format!("cannot write the QDQ model {}", path.display()))?;
            if !a.json && !a.quiet {
                println!("wrote the QDQ model {}", path.display());
            }
        }
    }
    let plan = compiled.plan.as_ref().context("the lower phase produced no plan")?;
    let scratch = tempfile::tempdir()?;
    let out = match (&r.out, &r.store) {
        (Some(o), _) => o,
        (None, Some(_)) => &scratch.path().join(format!("{}.kiln", crate::store::store_name(&r.name))),
        (None, None) => anyhow::bail!("--no-store needs -o DIR (or `output` in kiln.toml): the artifact has to go somewhere"),
    };
    let store = r
        .store
        .as_deref()
        .map(|p| kiln_registry::LocalStore::open(p).with_context(|| format!("cannot open the local store {}", p.display())))
        .transpose()?;
    let tune_name = match r.tune {
        Tune::Off => "off",
        Tune::Cache => "cache",
        Tune::Full => "full",
    };
    let id = crate::artifact::Identity { name: r.name.clone(), version: r.version.clone() };
    let art = crate::artifact::write(out, &id, &r.model, r.weights.as_deref(), tune_name, &r.dims, &compiled)
        .with_context(|| format!("cannot write the artifact to {}", out.display()))?;
    crate::artifact::write_evidence(&art, &compiled, key.as_ref())?;
    let report = Report {
        model: r.model.display().to_string(),
        target: plan.target.clone(),
        output: r.out.as_ref().map(|o| o.display().to_string()),
        digest: art.digest.clone(),
        phases_ms: compiled.phase_times.iter().map(|(p, d)| (p.to_string(), d.as_secs_f64() * 1e3)).collect(),
        steps: plan.steps.len(),
        kernels: plan.kernel_histogram(),
        precision: plan.precision_histogram(),
        precision_notes: plan.precision_notes(),
        precision_refused: f16_refused,
        weight_bytes: compiled.weights.len() as u64,
        passes: compiled.patches.iter().fold(Default::default(), |mut m, p| {
            *m.entry(p.pass.to_string()).or_insert(0) += 1;
            m
        }),
        tuning: compiled.tune.clone(),
        validation: None,
    };
    if !a.json && !a.quiet {
        print_text(&report);
    }
    let mut validation = None;
    if r.validate {
        let job = crate::validate::Job {
            artifact: out,
            model: &r.model,
            weights: r.weights.as_deref(),
            key: key.as_ref(),
            quiet: a.quiet || a.json,
            cost: r.cost.clone(),
        };
        let v = crate::validate::measure(&job, &r.opts)?;
        let dir = crate::validate::write(&job, &v)?;
        if !a.json && !a.quiet {
            crate::validate::print(&v, &dir);
        }
        validation = Some(v);
    }
    if let Some(store) = &store {
        let p = crate::store::store_artifact(store, out)
            .with_context(|| format!("cannot add the artifact to the local store {}", store.root().display()))?;
        if !a.json && !a.quiet {
            let name = crate::store::store_name(&p.name);
            println!("stored {name}:{} ({}) in {}", p.tag, p.target, store.root().display());
            if r.out.is_none() {
                println!(
                    "  (no -o: the folder above was temporary; `kiln pull {name}:{} -o DIR` writes the artifact, and its evidence and report in DIR.attestations/)",
                    p.tag
                );
            }
        }
    }
    if r.archive {
        let tar = std::path::PathBuf::from(format!("{}.tar", out.display()));
        kiln_artifact::pack(out, &tar)?;
        if !a.json && !a.quiet {
            println!("archive {}", tar.display());
        }
    }
    if a.json {
        let mut report = report;
        report.validation = validation.clone();
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    match &validation {
        Some(v) => crate::validate::verdict(v),
        None => Ok(()),
    }
}

fn print_mixed(m: &kiln_pipeline::mixed::MixedReport, precision: &str) {
    println!(
        "mixed precision (measured on {} samples, CPU): budget {:?}; drop all-{precision} {:.3e}, final {:.3e} ({})",
        m.samples,
        m.budget,
        m.drop_all_quantized,
        m.drop_final,
        if m.met { "met" } else { "NOT met even with every listed layer in f32" }
    );
    if let Some(a) = m.f32_accuracy {
        println!("  f32 accuracy against the labels: {a:.2}% (drops are in points below it)");
    }
    for l in &m.layers {
        println!("  {:<5} {:<8} {:<28} {}", l.precision, l.op, l.node, l.reason);
    }
}

fn print_latency(l: &kiln_pipeline::LatencyCheck) {
    let p = &l.precision;
    println!(
        "latency guard (measured on {}, {} interleaved runs, medians): {p} {:.3} ms, f32 {:.3} ms ({:.2}x)",
        l.device,
        l.runs,
        l.quantized_ms,
        l.float_ms,
        l.float_ms / l.quantized_ms
    );
    for (n, q, f) in &l.layers_kept_float {
        println!("  kept in f32: {n} ({p} step {q:.1} us >= f32 step {f:.1} us)");
    }
    if l.declined {
        let why = if l.quantized_ms >= l.float_ms {
            format!("the {p} plan is not faster than f32")
        } else {
            format!("no {p} layer is faster than its f32 step")
        };
        println!("  DECLINED {p}: {why} on this target; the f32 plan is emitted (--force-precision emits {p} anyway)");
    }
}

fn print_text(r: &Report) {
    println!("compiled {} for {} ({})", r.model, r.target.kind, r.target.device);
    let phases: Vec<String> = r.phases_ms.iter().map(|(p, ms)| format!("{p} {ms:.1} ms")).collect();
    println!("phases (measured): {}", phases.join(", "));
    let passes: Vec<String> = r.passes.iter().map(|(p, n)| format!("{p} x{n}")).collect();
    println!("graph passes: {}", if passes.is_empty() { "no rewrites".to_string() } else { passes.join(", ") });
    let kernels: Vec<String> = r.kernels.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    println!("plan: {} steps ({}), {} bytes of weights", r.steps, kernels.join(", "), r.weight_bytes);
    if let Some(why) = &r.precision_refused {
        println!("precision: fp16 NOT APPLIED: {why}; every layer is f32");
    }
    for (p, ks) in &r.precision {
        let n: usize = ks.values().sum();
        let list: Vec<String> = ks.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        println!("precision {p}: {n} steps ({})", list.join(", "));
    }
    if !r.precision.is_empty() {
        println!("  (steps not listed run in f32; transfers convert between host and device)");
    }
    for (note, nodes) in &r.precision_notes {
        let shown: Vec<&str> = nodes.iter().take(4).map(String::as_str).collect();
        let more = if nodes.len() > shown.len() { format!(", and {} more", nodes.len() - shown.len()) } else { String::new() };
        println!("  {} layers: {note} ({}{more})", nodes.len(), shown.join(", "));
    }
    let measured = r.tuning.iter().filter(|d| d.source == "measured").count();
    let cached = r.tuning.iter().filter(|d| d.source == "cache").count();
    println!(
        "tuning: {} kernel choices ({measured} measured, {cached} from cache, {} default)",
        r.tuning.len(),
        r.tuning.len() - measured - cached
    );
    for d in r.tuning.iter().filter(|d| d.source != "default") {
        let gain = match (d.default_ns, d.chosen_ns) {
            _ if d.chosen == d.default_variant => "= the default".to_string(),
            (Some(a), Some(b)) if b > 0 => format!("{:.2}x the default's speed ({})", a as f64 / b as f64, d.default_variant),
            _ => String::new(),
        };
        println!("  {} [{}]: {} ({}) {gain}", d.key.kernel, d.key.problem, d.chosen, d.source);
    }
    if let Some(o) = &r.output {
        println!("wrote {o} (artifact {})", r.digest);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
