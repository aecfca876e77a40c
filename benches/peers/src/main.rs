//! kiln-peers: Kiln's compiled CPU plan, tract and onnxruntime on the same models and inputs,
//! interleaved in one run; median latency, ratios, agreement of outputs, memory figures; then
//! a GEMM microbenchmark against the machine's measured FMA peak. Run it with
//! `bash benches/run.sh [--rounds N]` from the repository root.

mod bench;
mod engine;
mod gemm;
mod int8;
mod kiln_engine;
mod models;
mod ort_engine;
mod outputs;
mod report;
mod stats;
mod tract_engine;

use anyhow::{Context, bail};
use std::path::PathBuf;

const USAGE: &str = "usage: kiln-peers [--rounds N] [--budget-s S] [--settle-ms MS] [--only SUBSTRING (of a model label, or 'int8')] [--skip ENGINE]... [--no-gemm] [--no-models]
  run from the repository root (bash benches/run.sh does); KILN_TESTDATA moves the test-data cache";

struct Args {
    rounds: usize,
    budget_s: f64,
    only: Option<String>,
    gemm: bool,
    models: bool,
    settle_ms: u64,
    skip: Vec<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args { rounds: 10, budget_s: 60.0, only: None, gemm: true, models: true, settle_ms: 100, skip: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().with_context(|| format!("{arg} needs {what}\n{USAGE}"));
        match arg.as_str() {
            "--rounds" => a.rounds = value("a count")?.parse().context("--rounds")?,
            "--budget-s" => a.budget_s = value("seconds")?.parse().context("--budget-s")?,
            "--only" => a.only = Some(value("a substring of a model label")?),
            "--settle-ms" => a.settle_ms = value("milliseconds")?.parse().context("--settle-ms")?,
            "--skip" => {
                let e = value("kiln, tract, ort or wgpu")?;
                if !["kiln", "tract", "ort", "wgpu"].contains(&e.as_str()) {
                    bail!("--skip takes kiln, tract, ort or wgpu, not {e}");
                }
                a.skip.push(e);
            }
            "--no-gemm" => a.gemm = false,
            "--no-models" => a.models = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if a.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(a)
}

/// Tensors' data 64-byte aligned (cache lines, AVX-512 registers): see kiln_target_cpu::alloc.
#[global_allocator]
static ALLOC: kiln_target_cpu::alloc::Aligned = kiln_target_cpu::alloc::Aligned;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let root = std::env::current_dir()?;
    let cache = std::env::var_os("KILN_TESTDATA").map_or_else(|| root.join("testdata/cache"), PathBuf::from);
    let cfg = bench::Config {
        // KILN_BENCH_PYTHON: a Python with onnxruntime and numpy other than the test venv's (a
        // GPU machine without the venv).
        python: std::env::var_os("KILN_BENCH_PYTHON").map_or_else(|| cache.join("venv/bin/python"), PathBuf::from),
        worker: root.join("benches/ort_worker.py"),
        tune_dir: root.join("target/bench-tune"),
        work_dir: root.join("target/bench-peers"),
        cache,
        rounds: args.rounds,
        budget_ms: args.budget_s * 1e3,
        seed: 42,
        settle: std::time::Duration::from_millis(args.settle_ms),
        skip: args.skip.clone(),
    };
    if !cfg.python.is_file() {
        bail!("{} is missing: run `bash ci/test.sh` once (it creates the venv)", cfg.python.display());
    }
    let device = kiln_target_cpu::device::description();
    println!("Kiln vs peers, every figure measured in this run on {device}");
    println!("engines: kiln = compiled CPU plan (kiln_pipeline::compile, tune full, cache target/bench-tune, all cores);");
    println!("         tract = tract-onnx 0.23.9, fixed input facts, into_optimized, {}-thread executor;", tract_engine::THREADS);
    println!("         ort = onnxruntime in benches/ort_worker.py (intra_op_num_threads=2, default graph optimizations),");
    println!("               timed inside the worker with perf_counter around session.run;");
    let adapter = if args.skip.iter().any(|s| s == "wgpu") {
        "skipped".to_string()
    } else {
        kiln_target_wgpu::bench_peak::adapter().map_or_else(|e| format!("none: {e}"), |(desc, _)| desc)
    };
    println!("         wgpu = Kiln's wgpu target on the adapter found here ({adapter}),");
    println!("               ops without a WGSL kernel on the CPU inside the plan; reported as a ratio to Kiln's CPU plan.");
    println!("Each model: outputs compared, warm-up, then up to {} rounds interleaving kiln, tract, ort, wgpu;", cfg.rounds);
    println!("an engine stops once its timed runs pass ~{:.0} s on a model (runs made: n). Inputs seeded ({}).", args.budget_s, cfg.seed);
    println!("Between runs: an untimed {} ms pause, so the previous engine's worker threads stop spinning first.", args.settle_ms);
    println!("load average at start (1/5/15 min, other processes share these cores): {}", loadavg());
    tract_engine::use_threads();
    let mut results = Vec::new();
    if args.models {
        for spec in models::all() {
            if args.only.as_ref().is_some_and(|o| !spec.label.contains(o.as_str())) {
                continue;
            }
            println!();
            println!("== {}: {} (load average {})", spec.label, spec.shapes(), loadavg());
            let r = bench::run_model(&spec, &cfg);
            report::print_model(&r);
            results.push(r);
        }
        report::print_summary(&results, &device);
        if args.only.as_ref().is_none_or(|o| int8::LABEL.contains(o.as_str())) {
            int8::run(&cfg)?;
        }
    }
    if args.gemm {
        gemm::run(&device)?;
        if !args.skip.iter().any(|s| s == "wgpu") {
            gemm::run_wgpu()?;
        }
    }
    println!();
    println!("load average at end: {}", loadavg());
    Ok(())
}

/// /proc/loadavg's first three fields, or "unknown".
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").ok().map_or("unknown".into(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
