use crate::{inputs, load};
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;

/// Measure latency of a model (reference executor) or a compiled plan folder, inside this
/// process: warm-up runs excluded, then min / median / p90 / p99 / max over --runs.
///
/// Example: kiln bench model.kiln --random --runs 50
#[derive(clap::Args)]
pub struct Args {
    /// The model file (.onnx) or a folder written by `kiln compile`.
    model: PathBuf,
    #[command(flatten)]
    inputs: inputs::InputArgs,
    /// Timed runs.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Untimed warm-up runs before them.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    executor: String,
    /// Every figure below was measured on this machine, in this process.
    measured_on: String,
    warmup: usize,
    runs: usize,
    min_ms: f64,
    median_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    throughput_per_s: f64,
    planned_peak_bytes: Option<u64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn main(a: Args) -> anyhow::Result<()> {
    if a.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    let mut runnable = load::runnable(&a.model)?;
    let (feeds, notes) = a.inputs.build(&runnable.inputs())?;
    for _ in 0..a.warmup {
        runnable.run(feeds.clone()).with_context(|| format!("running {}", a.model.display()))?;
    }
    let mut ms = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        let feeds = feeds.clone();
        let t = std::time::Instant::now();
        runnable.run(feeds)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let median = percentile(&ms, 0.5);
    let r = Report {
        model: a.model.display().to_string(),
        executor: runnable.executor(),
        measured_on: kiln_target_cpu::device::description(),
        warmup: a.warmup,
        runs: a.runs,
        min_ms: ms[0],
        median_ms: median,
        p90_ms: percentile(&ms, 0.9),
        p99_ms: percentile(&ms, 0.99),
        max_ms: ms[ms.len() - 1],
        throughput_per_s: 1e3 / median,
        planned_peak_bytes: runnable.planned_peak_bytes(),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    for n in notes {
        println!("note: {n}");
    }
    println!("{} on the {}", r.model, r.executor);
    println!("measured on {}: {} runs after {} warm-up", r.measured_on, r.runs, r.warmup);
    println!(
        "latency ms: min {:.3}  median {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        r.min_ms, r.median_ms, r.p90_ms, r.p99_ms, r.max_ms
    );
    println!("throughput: {:.1} runs/s (1 / median)", r.throughput_per_s);
    if let Some(b) = r.planned_peak_bytes {
        println!("planned peak of intermediate buffers: {b} bytes");
    }
    Ok(())
}
