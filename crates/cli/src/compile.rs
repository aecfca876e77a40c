use anyhow::Context;
use kiln_target::{CompileOptions, TuneMode};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Tune {
    /// Every kernel takes its default candidate.
    Off,
    /// Use recorded tuning decisions; measure nothing.
    Cache,
    /// Use recorded decisions and measure kernels without one, within --tune-budget.
    Full,
}

/// Compile a model for a target: import, optimize, lower (choosing kernels, tuned on this
/// machine), and write a plan folder that `kiln run` and `kiln bench` execute.
///
/// Example: kiln compile model.onnx --target cpu -o model.kiln --tune full --tune-budget 30s
#[derive(clap::Args)]
pub struct Args {
    /// The model: .onnx, a Hugging Face folder (config.json + safetensors), or a .safetensors file.
    model: PathBuf,
    /// Replace the model's initializers by name with this safetensors checkpoint's tensors.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// The hardware target.
    #[arg(long, default_value = "cpu")]
    target: String,
    /// The plan folder to write (replaced atomically if it holds a previous plan).
    #[arg(short = 'o', long = "output", value_name = "DIR", required_unless_present = "stop_after")]
    out: Option<PathBuf>,
    /// Kernel tuning: off, cache (recorded decisions only) or full (measure what is not recorded).
    #[arg(long, value_enum, default_value = "cache")]
    tune: Tune,
    /// Time budget for measuring kernel candidates, e.g. 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    tune_budget: Duration,
    /// Tuning-record folder (default: $KILN_CACHE_DIR, else ~/.cache/kiln/tune).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Stop after a phase and print the IR at that point instead of writing a plan.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(kiln_pipeline::phases()))]
    stop_after: Option<String>,
    /// Bind a symbolic dimension for tuning, as NAME=SIZE (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = crate::inputs::parse_dim)]
    dims: Vec<(String, usize)>,
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
    /// Measured wall time per phase, milliseconds.
    phases_ms: Vec<(String, f64)>,
    steps: usize,
    kernels: std::collections::BTreeMap<String, usize>,
    weight_bytes: u64,
    /// Rewrites made by the graph passes, counted per pass.
    passes: std::collections::BTreeMap<String, usize>,
    tuning: Vec<kiln_target::TuneDecision>,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let target = kiln_pipeline::target(&a.target)?;
    if let kiln_target::Availability::Unavailable { reason, remedy } = target.probe() {
        anyhow::bail!("target {} is not available here: {reason} ({remedy})", a.target);
    }
    let opts = CompileOptions {
        tune: match a.tune {
            Tune::Off => TuneMode::Off,
            Tune::Cache => TuneMode::Cache,
            Tune::Full => TuneMode::Full,
        },
        tune_budget: a.tune_budget,
        cache_dir: a.cache_dir.clone().or_else(kiln_pipeline::default_cache_dir),
        threads: None,
        dims: a.dims.iter().cloned().collect(),
        tuning_shapes: Default::default(),
    };
    if !a.model.exists() {
        anyhow::bail!("{} does not exist", a.model.display());
    }
    let compiled = match &a.weights {
        None => kiln_pipeline::compile(&a.model, target.as_ref(), &opts, a.stop_after.as_deref()),
        Some(w) => {
            let started = std::time::Instant::now();
            let (model, report) = kiln_pipeline::load_model(&a.model, &target.coverage(), Some(w))
                .with_context(|| format!("cannot import {}", a.model.display()))?;
            if let Some(r) = &report {
                crate::load::print_rebind(w, r);
            }
            let import = started.elapsed();
            kiln_pipeline::compile_model(model, target.as_ref(), &opts, a.stop_after.as_deref()).map(|mut c| {
                c.phase_times.insert(0, ("import", import));
                c
            })
        }
    }
    .with_context(|| format!("cannot compile {}", a.model.display()))?;
    if let Some(phase) = &a.stop_after {
        println!("# IR after phase '{phase}'");
        print!("{}", kiln_ir::dump(&compiled.model));
        return Ok(());
    }
    let plan = compiled.plan.as_ref().context("the lower phase produced no plan")?;
    let out = a.out.as_ref().context("-o DIR is required")?;
    kiln_target::write_plan(out, plan, &compiled.weights).with_context(|| format!("cannot write the plan to {}", out.display()))?;
    let report = Report {
        model: a.model.display().to_string(),
        target: plan.target.clone(),
        output: Some(out.display().to_string()),
        phases_ms: compiled.phase_times.iter().map(|(p, d)| (p.to_string(), d.as_secs_f64() * 1e3)).collect(),
        steps: plan.steps.len(),
        kernels: plan.kernel_histogram(),
        weight_bytes: compiled.weights.len() as u64,
        passes: compiled.patches.iter().fold(Default::default(), |mut m, p| {
            *m.entry(p.pass.to_string()).or_insert(0) += 1;
            m
        }),
        tuning: compiled.tune.clone(),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn print_text(r: &Report) {
    println!("compiled {} for {} ({})", r.model, r.target.kind, r.target.device);
    let phases: Vec<String> = r.phases_ms.iter().map(|(p, ms)| format!("{p} {ms:.1} ms")).collect();
    println!("phases (measured): {}", phases.join(", "));
    let passes: Vec<String> = r.passes.iter().map(|(p, n)| format!("{p} x{n}")).collect();
    println!("graph passes: {}", if passes.is_empty() { "no rewrites".to_string() } else { passes.join(", ") });
    let kernels: Vec<String> = r.kernels.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    println!("plan: {} steps ({}), {} bytes of weights", r.steps, kernels.join(", "), r.weight_bytes);
    let measured = r.tuning.iter().filter(|d| d.source == "measured").count();
    let cached = r.tuning.iter().filter(|d| d.source == "cache").count();
    println!("tuning: {} kernel choices ({measured} measured, {cached} from cache, {} default)", r.tuning.len(), r.tuning.len() - measured - cached);
    for d in r.tuning.iter().filter(|d| d.source != "default") {
        let gain = match (d.default_ns, d.chosen_ns) {
            _ if d.chosen == d.default_variant => "= the default".to_string(),
            (Some(a), Some(b)) if b > 0 => format!("{:.2}x the default's speed ({})", a as f64 / b as f64, d.default_variant),
            _ => String::new(),
        };
        println!("  {} [{}]: {} ({}) {gain}", d.key.kernel, d.key.problem, d.chosen, d.source);
    }
    if let Some(o) = &r.output {
        println!("wrote {o}");
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
