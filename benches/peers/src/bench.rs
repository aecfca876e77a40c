//! One model: load it in each engine, check they agree, warm up, then timed rounds in which
//! the engines take turns (kiln, tract, onnxruntime), each capped at a time budget.

use crate::engine::Engine;
use crate::kiln_engine::KilnEngine;
use crate::models::ModelSpec;
use crate::ort_engine::OrtEngine;
use crate::outputs::{Output, compare};
use crate::tract_engine::TractEngine;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

pub struct Config {
    pub cache: PathBuf,
    pub python: PathBuf,
    pub worker: PathBuf,
    pub tune_dir: PathBuf,
    pub work_dir: PathBuf,
    pub rounds: usize,
    pub budget_ms: f64,
    pub seed: u64,
    /// Untimed pause after every run, so one engine's spinning worker threads have parked
    /// before the next engine starts (2 cores are easily oversubscribed).
    pub settle: std::time::Duration,
    /// Engines not to run ("kiln", "tract", "ort").
    pub skip: Vec<String>,
}

/// One engine on one model.
pub struct Slot {
    pub name: &'static str,
    pub engine: Option<Box<dyn Engine>>,
    pub error: Option<String>,
    /// Untimed (warm-up) runs, ms; the first is the agreement run.
    pub warm: Vec<f64>,
    /// Timed runs, ms.
    pub times: Vec<f64>,
    /// Runs planned within the budget.
    pub planned: usize,
    /// How its outputs compare with the reference engine's.
    pub agreement: Option<String>,
    pub load_note: String,
}

impl Slot {
    pub fn new(name: &'static str, made: anyhow::Result<(Box<dyn Engine>, String)>) -> Slot {
        let (engine, error, load_note) = match made {
            Ok((e, note)) => (Some(e), None, note),
            Err(e) => (None, Some(format!("{e:#}")), String::new()),
        };
        Slot { name, engine, error, warm: Vec::new(), times: Vec::new(), planned: 0, agreement: None, load_note }
    }

    fn fail(&mut self, e: anyhow::Error) {
        self.error = Some(format!("{e:#}"));
        self.engine = None;
    }

    /// Calls `f` on the engine, turning an error or a panic into the slot's failure.
    fn call<T>(&mut self, f: impl FnOnce(&mut dyn Engine) -> anyhow::Result<T>) -> Option<T> {
        let engine = self.engine.as_mut()?;
        match guard(|| f(engine.as_mut())) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }
}

pub struct ModelResult {
    pub label: &'static str,
    pub shapes: String,
    pub not_run: Option<String>,
    pub slots: Vec<Slot>,
    pub kiln_planned_peak: Option<u64>,
    /// The onnxruntime worker process's peak resident set (Python and numpy included).
    pub ort_peak_rss_kib: Option<u64>,
    /// Its resident set before the session was created.
    pub ort_rss_before_kib: Option<u64>,
}

/// Runs `f`, turning a panic into an error (a peer that panics on a model is a row, not a crash).
pub fn guard<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            anyhow::bail!("panicked: {msg}")
        }
    }
}

/// Builds the IR from a Hugging Face folder and writes it as ONNX under `work_dir`.
fn export_for_peers(folder: &std::path::Path, work_dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let (model, _) = kiln_pipeline::load_model(folder, &kiln_reference::op_set(), None)?;
    std::fs::create_dir_all(work_dir)?;
    let name = folder.parent().and_then(|p| p.file_name()).map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned());
    let out = work_dir.join(format!("{name}.onnx"));
    kiln_onnx::export(&model, &out, &kiln_onnx::ExportOptions::default())?;
    Ok(out)
}

pub fn run_model(spec: &ModelSpec, cfg: &Config) -> ModelResult {
    let mut r = ModelResult { label: spec.label, shapes: spec.shapes(), not_run: spec.not_run.map(str::to_string), slots: Vec::new(), kiln_planned_peak: None, ort_peak_rss_kib: None, ort_rss_before_kib: None };
    if r.not_run.is_some() {
        return r;
    }
    let path = spec.path(&cfg.cache);
    if !(path.is_file() || (spec.hf_folder && path.is_dir())) {
        r.not_run = Some(format!("{} is missing: run testdata/fetch.sh", path.display()));
        return r;
    }
    // The peers read ONNX: a Hugging Face folder is exported by Kiln once, for both of them.
    let peer_path = if spec.hf_folder {
        match export_for_peers(&path, &cfg.work_dir) {
            Ok(p) => {
                println!("  peers  run Kiln's ONNX export of the folder: {}", p.display());
                p
            }
            Err(e) => {
                r.not_run = Some(format!("exporting {} to ONNX for the peers: {e:#}", path.display()));
                return r;
            }
        }
    } else {
        path.clone()
    };
    let inputs = match spec.make_inputs(cfg.seed) {
        Ok(i) => i,
        Err(e) => {
            r.not_run = Some(format!("{e:#}"));
            return r;
        }
    };
    let skipped = |name: &str| cfg.skip.iter().any(|s| s == name);
    let skip_err = || anyhow::anyhow!("skipped (--skip)");
    let kiln = if skipped("kiln") { Err(skip_err()) } else { guard(|| KilnEngine::new(&path, spec.dims(), &cfg.tune_dir, inputs.clone())) };
    let kiln = kiln.map(|k| {
        let note = format!("compiled: {}", k.compile_note);
        (Box::new(k) as Box<dyn Engine>, note)
    });
    let tract = if skipped("tract") { Err(skip_err()) } else { guard(|| TractEngine::new(&peer_path, &inputs)) };
    let tract = tract.map(|t| {
        let note = format!("loaded, optimized and planned in {:.2} s ({})", t.load_s, t.note);
        (Box::new(t) as Box<dyn Engine>, note)
    });
    let dir = cfg.work_dir.join(peer_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    let mut r_before = None;
    let ort = if skipped("ort") { Err(skip_err()) } else { guard(|| OrtEngine::new(&cfg.python, &cfg.worker, &peer_path, &inputs, &dir)) };
    let ort = ort.map(|o| {
        let note = format!("onnxruntime {} session created in {:.2} s (worker RSS before it: {:.0} MiB)", o.version, o.load_ms / 1e3, o.rss_before_kib as f64 / 1024.0);
        r_before = Some(o.rss_before_kib);
        (Box::new(o) as Box<dyn Engine>, note)
    });
    // Kiln's wgpu target on the adapter found here (lavapipe on a CPU-only machine): its
    // ratio to Kiln's CPU plan, the wgpu benchmark.
    let wgpu = if skipped("wgpu") {
        Err(skip_err())
    } else {
        guard(|| {
            let t = kiln_pipeline::target("wgpu")?;
            KilnEngine::on_target(t.as_ref(), &path, spec.dims(), &cfg.tune_dir, inputs.clone(), None)
        })
    };
    let wgpu = wgpu.map(|k| {
        let note = format!("compiled for wgpu: {}", k.compile_note);
        (Box::new(k) as Box<dyn Engine>, note)
    });
    r.slots = vec![Slot::new("kiln", kiln), Slot::new("tract", tract), Slot::new("ort", ort), Slot::new("wgpu", wgpu)];
    for s in &r.slots {
        match &s.error {
            None => println!("  {:<6} {}", s.name, s.load_note),
            Some(e) => println!("  {:<6} failed to load: {e}", s.name),
        }
    }
    agree(&mut r.slots, cfg);
    warm_up(&mut r.slots, cfg);
    timed_rounds(&mut r.slots, cfg);
    r.ort_rss_before_kib = r_before;
    r.kiln_planned_peak = r.slots[0].call(|e| Ok(e.memory())).flatten();
    r.ort_peak_rss_kib = r.slots[2].call(|e| Ok(e.memory())).flatten().map(|b| b / 1024);
    // Free the plan, tract's model and the worker before the next model.
    for s in &mut r.slots {
        s.engine = None;
    }
    r
}

/// The first run of each engine: its outputs, compared with onnxruntime's (tract's if
/// onnxruntime failed). Counts as the first warm-up run.
fn agree(slots: &mut [Slot], cfg: &Config) {
    let mut outs: Vec<Option<Vec<Output>>> = Vec::new();
    for s in slots.iter_mut() {
        let o = s.call(|e| e.outputs());
        std::thread::sleep(cfg.settle);
        outs.push(o.map(|(o, ms)| {
            s.warm.push(ms);
            o
        }));
    }
    let reference = if outs[2].is_some() { 2 } else { 1 };
    let Some(want) = outs[reference].take() else { return };
    let ref_name = slots[reference].name;
    for (i, s) in slots.iter_mut().enumerate() {
        if i == reference {
            s.agreement = Some("(reference)".into());
            continue;
        }
        if let Some(got) = &outs[i] {
            s.agreement = Some(format!("vs {ref_name}: {}", compare(got, &want).describe()));
        }
    }
}

/// Up to two more untimed runs per engine, while they stay under 5% of the budget; then plan
/// how many timed runs fit the budget.
pub fn warm_up(slots: &mut [Slot], cfg: &Config) {
    for s in slots.iter_mut() {
        while s.engine.is_some() && s.warm.len() < 3 && s.warm.iter().sum::<f64>() < cfg.budget_ms / 20.0 {
            if let Some(ms) = s.call(|e| e.run_once()) {
                s.warm.push(ms);
            }
            std::thread::sleep(cfg.settle);
        }
        let est = s.warm.iter().copied().fold(f64::INFINITY, f64::min);
        s.planned = if est.is_finite() { ((cfg.budget_ms / est.max(1e-3)) as usize).clamp(1, cfg.rounds) } else { 0 };
    }
}

/// Round r runs every engine that still has runs planned and budget left, in slot order.
pub fn timed_rounds(slots: &mut [Slot], cfg: &Config) {
    for round in 0..cfg.rounds {
        for s in slots.iter_mut() {
            if round >= s.planned || s.times.iter().sum::<f64>() >= cfg.budget_ms {
                continue;
            }
            if let Some(ms) = s.call(|e| e.run_once()) {
                s.times.push(ms);
            }
            std::thread::sleep(cfg.settle);
        }
    }
}
