//! Kiln: compile the model for the CPU target (full tuning) and run the loaded plan.

use crate::engine::Engine;
use crate::outputs::Output;
use anyhow::Context;
use kiln_target::{CompileOptions, Executable, Target, TuneMode};
use kiln_tensor::Tensor;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct KilnEngine {
    exe: Box<dyn Executable>,
    inputs: Vec<(String, Tensor)>,
    /// Output names in plan order.
    names: Vec<String>,
    /// What the compile did, measured: "import 0.31 s, optimize 0.00 s, lower 0.80 s".
    pub compile_note: String,
}

impl KilnEngine {
    pub fn new(model: &Path, dims: BTreeMap<String, usize>, tune_dir: &Path, inputs: Vec<(String, Tensor)>) -> anyhow::Result<KilnEngine> {
        Self::with_quant(model, dims, tune_dir, inputs, None)
    }

    /// [`KilnEngine::new`], quantized when `quant` is given.
    pub fn with_quant(
        model: &Path,
        dims: BTreeMap<String, usize>,
        tune_dir: &Path,
        inputs: Vec<(String, Tensor)>,
        quant: Option<&kiln_pipeline::QuantRequest>,
    ) -> anyhow::Result<KilnEngine> {
        Self::on_target(&kiln_target_cpu::CpuTarget, model, dims, tune_dir, inputs, quant)
    }

    /// [`KilnEngine::with_quant`] compiled for `target` (the CPU, or wgpu on the adapter
    /// found here); an unavailable target is an error naming why.
    pub fn on_target(
        target: &dyn Target,
        model: &Path,
        dims: BTreeMap<String, usize>,
        tune_dir: &Path,
        inputs: Vec<(String, Tensor)>,
        quant: Option<&kiln_pipeline::QuantRequest>,
    ) -> anyhow::Result<KilnEngine> {
        if let kiln_target::Availability::Unavailable { reason, remedy } = target.probe() {
            anyhow::bail!("target {} unavailable: {reason} ({remedy})", target.id().kind);
        }
        let opts = CompileOptions {
            tune: TuneMode::Full,
            tune_budget: Duration::from_secs(30),
            cache_dir: Some(tune_dir.to_path_buf()),
            threads: None,
            dims,
            ..CompileOptions::default()
        };
        let t = Instant::now();
        let (m, _) = kiln_pipeline::load_model(model, &target.coverage(), None).with_context(|| format!("loading {}", model.display()))?;
        let compiled =
            kiln_pipeline::compile_model_with(m, target, &opts, None, quant).with_context(|| format!("compiling {}", model.display()))?;
        let guard_note = compiled.quantized.as_ref().and_then(|q| q.latency.as_ref()).map(|l| {
            format!(
                "latency guard: int8 {:.2} ms vs f32 {:.2} ms, {} layers kept f32{}",
                l.quantized_ms,
                l.float_ms,
                l.layers_kept_float.len(),
                if l.declined { ", DECLINED (f32 plan emitted)" } else { "" }
            )
        });
        let plan = compiled.plan.context("the compile stopped before lowering")?;
        let exe = target.load(&plan, compiled.weights).context("loading the plan")?;
        let mut notes: Vec<String> = compiled.phase_times.iter().map(|(p, d)| format!("{p} {:.2} s", d.as_secs_f64())).collect();
        notes.push(format!("load; total {:.2} s", t.elapsed().as_secs_f64()));
        notes.push(format!("{} tuning decisions", compiled.tune.len()));
        notes.extend(guard_note);
        let names = plan.outputs.iter().map(|&v| plan.values[v].name.clone()).collect();
        Ok(KilnEngine { exe, inputs, names, compile_note: notes.join(", ") })
    }

    fn run(&mut self) -> anyhow::Result<(Vec<(String, Tensor)>, f64)> {
        let feeds = self.inputs.clone();
        let t = Instant::now();
        let out = self.exe.run(feeds)?;
        Ok((out, t.elapsed().as_secs_f64() * 1e3))
    }
}

impl Engine for KilnEngine {
    fn run_once(&mut self) -> anyhow::Result<f64> {
        Ok(self.run()?.1)
    }

    fn outputs(&mut self) -> anyhow::Result<(Vec<Output>, f64)> {
        let (out, ms) = self.run()?;
        // Put them in plan order (the model's output order) whatever order run returns.
        let mut ordered = Vec::with_capacity(self.names.len());
        for name in &self.names {
            let (_, t) = out.iter().find(|(n, _)| n == name).with_context(|| format!("kiln returned no output '{name}'"))?;
            ordered.push(Output::from_kiln(name, t)?);
        }
        Ok((ordered, ms))
    }

    fn memory(&mut self) -> Option<u64> {
        self.exe.planned_peak_bytes()
    }
}
