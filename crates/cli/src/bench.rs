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
    /// Idle this many milliseconds before each timed (and profiled) run, as a server does
    /// between requests: the latency after idle, which cold caches and sleeping threads raise.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pause_ms: u64,
    /// Also time every plan step (in extra runs after the timed ones, so the figures above
    /// are not slowed by it) and print where the time goes, by op and kernel.
    #[arg(long)]
    profile: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    executor: String,
    /// Every figure below was measured on this machine, in this process.
    measured_on: String,
    warmup: usize,
    runs: usize,
    /// Idle time before each timed run.
    pause_ms: u64,
    min_ms: f64,
    median_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    throughput_per_s: f64,
    planned_peak_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Profile>,
}

/// Where a run's time goes, from `--profile` runs (measured, summed over `runs`).
#[derive(Serialize)]
struct Profile {
    runs: usize,
    /// Per (op, kernel), most time first.
    by_op: Vec<ProfileRow>,
    /// The slowest steps, most time first.
    top_steps: Vec<ProfileRow>,
}

#[derive(Serialize)]
struct ProfileRow {
    op: String,
    kernel: String,
    /// The step's node (empty in `by_op`).
    node: String,
    /// Steps in this row (1 in `top_steps`).
    steps: usize,
    /// Mean milliseconds per run.
    ms_per_run: f64,
    share: f64,
}

fn profile(runnable: &mut kiln_pipeline::Runnable, feeds: &[(String, kiln_tensor::Tensor)], runs: usize, pause: std::time::Duration) -> anyhow::Result<Option<Profile>> {
    if !runnable.set_profiling(true) {
        return Ok(None);
    }
    for _ in 0..runs {
        std::thread::sleep(pause);
        runnable.run(feeds.to_vec())?;
    }
    let times = runnable.step_times();
    runnable.set_profiling(false);
    let total: f64 = times.iter().map(|t| t.seconds).sum::<f64>().max(f64::MIN_POSITIVE);
    let per_run = |s: f64| s * 1e3 / runs as f64;
    let mut groups: std::collections::BTreeMap<(String, String), (usize, f64)> = Default::default();
    for t in &times {
        let e = groups.entry((t.op.clone(), t.kernel.clone())).or_default();
        e.0 += 1;
        e.1 += t.seconds;
    }
    let mut by_op: Vec<ProfileRow> = groups
        .into_iter()
        .map(|((op, kernel), (steps, s))| ProfileRow { op, kernel, node: String::new(), steps, ms_per_run: per_run(s), share: s / total })
        .collect();
    by_op.sort_by(|a, b| b.ms_per_run.total_cmp(&a.ms_per_run));
    let mut top: Vec<_> = times.iter().collect();
    top.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let top_steps = top
        .into_iter()
        .take(10)
        .map(|t| ProfileRow { op: t.op.clone(), kernel: t.kernel.clone(), node: t.node.clone(), steps: 1, ms_per_run: per_run(t.seconds), share: t.seconds / total })
        .collect();
    Ok(Some(Profile { runs, by_op, top_steps }))
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
    let (feeds, notes) = a.inputs.build(&runnable.inputs(), &runnable.index_bounds())?;
    for _ in 0..a.warmup {
        runnable.run(feeds.clone()).with_context(|| format!("running {}", a.model.display()))?;
    }
    let mut ms = Vec::with_capacity(a.runs);
    let pause = std::time::Duration::from_millis(a.pause_ms);
    for _ in 0..a.runs {
        let feeds = feeds.clone();
        std::thread::sleep(pause);
        let t = std::time::Instant::now();
        runnable.run(feeds)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let prof = if a.profile { profile(&mut runnable, &feeds, a.runs, pause)? } else { None };
    if a.profile && prof.is_none() {
        println!("note: --profile times plan steps; compile the model first (`kiln compile`) to profile it");
    }
    let median = percentile(&ms, 0.5);
    let r = Report {
        model: a.model.display().to_string(),
        executor: runnable.executor(),
        measured_on: kiln_target_cpu::device::description(),
        warmup: a.warmup,
        runs: a.runs,
        pause_ms: a.pause_ms,
        min_ms: ms[0],
        median_ms: median,
        p90_ms: percentile(&ms, 0.9),
        p99_ms: percentile(&ms, 0.99),
        max_ms: ms[ms.len() - 1],
        throughput_per_s: 1e3 / median,
        planned_peak_bytes: runnable.planned_peak_bytes(),
        profile: prof,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    for n in notes {
        println!("note: {n}");
    }
    println!("{} on the {}", r.model, r.executor);
    let idle = if r.pause_ms > 0 { format!(", each after {} ms idle", r.pause_ms) } else { String::new() };
    println!("measured on {}: {} runs after {} warm-up{idle}", r.measured_on, r.runs, r.warmup);
    println!(
        "latency ms: min {:.3}  median {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        r.min_ms, r.median_ms, r.p90_ms, r.p99_ms, r.max_ms
    );
    println!("throughput: {:.1} runs/s (1 / median)", r.throughput_per_s);
    if let Some(b) = r.planned_peak_bytes {
        println!("planned peak of intermediate buffers: {b} bytes");
    }
    if let Some(p) = &r.profile {
        println!("\nprofile over {} extra runs (measured; ms per run, share of step time):", p.runs);
        println!("{:>9} {:>6} {:>5}  op / kernel", "ms", "share", "steps");
        for row in &p.by_op {
            println!("{:>9.3} {:>5.1}% {:>5}  {} / {}", row.ms_per_run, row.share * 100.0, row.steps, row.op, row.kernel);
        }
        println!("slowest steps:");
        for row in &p.top_steps {
            println!("{:>9.3} {:>5.1}%  {} ({} / {})", row.ms_per_run, row.share * 100.0, row.node, row.op, row.kernel);
        }
    }
    Ok(())
}
