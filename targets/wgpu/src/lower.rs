//! Lowering: the CPU target lowers the model first (every node gets a CPU kernel or the
//! reference one), then each step a WGSL kernel covers moves to the adapter with its tuned
//! variant, and explicit `transfer` steps (upload / readback) go in wherever a value crosses
//! between host and device, so the plan shows every crossing.

use crate::kernels;
use crate::tune;
use crate::weights::value_weight;
use kiln_ir::Model;
use kiln_target::{CompileOptions, Plan, Step, Target, TargetError, TargetId, TuneCache, Tuner};
use std::collections::BTreeMap;

pub const TRANSFER: &str = "transfer";
pub const UPLOAD: &str = "Upload";
pub const READBACK: &str = "Readback";
pub const TRANSFER_DOMAIN: &str = "kiln.wgpu";

pub fn is_gpu(s: &Step) -> bool {
    s.kernel.starts_with("wgpu.")
}

fn transfer(plan: &Plan, v: usize, op: &str) -> Step {
    let (verb, variant) = if op == UPLOAD { ("upload", "host-to-device") } else { ("readback", "device-to-host") };
    Step {
        node: format!("{verb} {}", plan.values[v].name),
        op: op.into(),
        domain: TRANSFER_DOMAIN.into(),
        kernel: TRANSFER.into(),
        variant: variant.into(),
        inputs: vec![Some(v)],
        outputs: Vec::new(),
        attrs: BTreeMap::new(),
        opset: 1,
        launch: None,
    }
}

pub fn lower(model: &Model, id: TargetId, opts: &CompileOptions, tuner: &mut Tuner) -> Result<(Plan, Vec<u8>), TargetError> {
    // The CPU part is tuned for the CPU, under its own fingerprint, in the same cache folder.
    let cpu = kiln_target_cpu::CpuTarget;
    let cache = match &opts.cache_dir {
        Some(d) => TuneCache::open(d)?,
        None => TuneCache::in_memory(),
    };
    let mut cpu_tuner = Tuner::new(tuner.mode, cache, cpu.id().fingerprint, opts.tune_budget / 2);
    let (mut plan, blob) = cpu.lower(model, opts, &mut cpu_tuner)?;
    cpu_tuner.cache.save()?;
    tuner.decisions.extend(cpu_tuner.decisions);
    plan.target = id;

    let gpu = crate::device::gpu().ok();
    let cpu_plan = plan.clone();
    let weight = |v: usize| value_weight(&cpu_plan, &blob, v);
    let f32 = |v: usize| cpu_plan.values.get(v).is_some_and(|pv| pv.dtype == "f32");
    for step in &mut plan.steps {
        let Some((kernel, variants)) = kernels::select(step, &weight, &f32) else { continue };
        step.kernel = kernel.to_string();
        step.variant = variants[0].to_string();
        if let Some(g) = &gpu {
            let (variant, launch) = tune::tune_step(g, &cpu_plan, step, variants, opts, tuner, &weight)?;
            step.variant = variant;
            step.launch = launch;
        }
    }

    // Residency: inputs start on the host; constants live on both sides (wgpu steps' weights
    // are uploaded once, at load).
    let n = plan.values.len();
    let mut on_host = vec![false; n];
    let mut on_gpu = vec![false; n];
    for &v in &plan.inputs {
        on_host[v] = true;
    }
    for (v, pv) in plan.values.iter().enumerate() {
        if pv.weight.is_some() {
            on_host[v] = true;
            on_gpu[v] = true;
        }
    }
    let mut steps = Vec::with_capacity(plan.steps.len());
    for (i, s) in plan.steps.iter().enumerate() {
        // A relabelling step follows its input (on the host it stays the CPU plan's); a shape
        // query moves only where the input is on the device alone.
        let input = s.inputs.first().copied().flatten();
        let keep_cpu = (kernels::only_relabels(&s.kernel) && input.is_some_and(|v| !on_gpu[v]))
            || (kernels::output_on_host(&s.kernel) && input.is_some_and(|v| on_host[v]));
        let s = if keep_cpu { &cpu_plan.steps[i] } else { s };
        let gpu_step = is_gpu(s);
        if kernels::output_on_host(&s.kernel) {
            // Reads the device value's shape only: no transfer in, its output on the host.
            for &v in s.outputs.iter().flatten() {
                (on_gpu[v], on_host[v]) = (false, true);
            }
            steps.push(s.clone());
            continue;
        }
        let host_reads = if gpu_step { kernels::host_inputs(&s.kernel) } else { &[] };
        for (j, &v) in s.inputs.iter().enumerate().filter_map(|(j, v)| v.as_ref().map(|v| (j, v))) {
            if host_reads.contains(&j) {
                if !on_host[v] {
                    steps.push(transfer(&plan, v, READBACK));
                    on_host[v] = true;
                }
            } else if gpu_step && !on_gpu[v] {
                steps.push(transfer(&plan, v, UPLOAD));
                on_gpu[v] = true;
            } else if !gpu_step && !on_host[v] {
                steps.push(transfer(&plan, v, READBACK));
                on_host[v] = true;
            }
        }
        for &v in s.outputs.iter().flatten() {
            on_gpu[v] = gpu_step;
            on_host[v] = !gpu_step;
        }
        steps.push(s.clone());
    }
    for &v in &plan.outputs {
        if !on_host[v] {
            steps.push(transfer(&plan, v, READBACK));
            on_host[v] = true;
        }
    }
    plan.steps = steps;
    Ok((plan, blob))
}
