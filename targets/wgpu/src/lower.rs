//! Lowering: the CPU target lowers the model first (every node gets a CPU kernel or the
//! reference one), then each step a WGSL kernel covers moves to the adapter with its tuned
//! variant, and explicit `transfer` steps (upload / readback) go in wherever a value crosses
//! between host and device, so the plan shows every crossing.

use crate::kernels;
use crate::runtime::Float;
use crate::tune;
use crate::weights::value_weight;
use kiln_ir::Model;
use kiln_target::{AttrValue, CompileOptions, FloatPrecision, Plan, PlanValue, Step, Target, TargetError, TargetId, TuneCache, Tuner};
use std::collections::BTreeMap;

pub const TRANSFER: &str = "transfer";
pub const UPLOAD: &str = "Upload";
pub const READBACK: &str = "Readback";
pub const TRANSFER_DOMAIN: &str = "kiln.wgpu";

pub fn is_gpu(s: &Step) -> bool {
    s.kernel.starts_with("wgpu.")
}

/// A step's lowering failure.
pub fn lower_error(s: &Step, reason: String) -> TargetError {
    TargetError::Lower { target: "wgpu".into(), node: s.node.clone(), op: s.op.clone(), reason }
}

fn transfer(name: &str, v: usize, op: &str, float: Float) -> Step {
    let (verb, variant) = if op == UPLOAD { ("upload", "host-to-device") } else { ("readback", "device-to-host") };
    let mut attrs = BTreeMap::new();
    // The device side's storage when it is not f32 (the transfer converts).
    if float == Float::F16 {
        attrs.insert(kernels::PRECISION.to_string(), AttrValue::String(float.name().into()));
    }
    Step {
        node: format!("{verb} {name}"),
        op: op.into(),
        domain: TRANSFER_DOMAIN.into(),
        kernel: TRANSFER.into(),
        variant: variant.into(),
        inputs: vec![Some(v)],
        outputs: Vec::new(),
        attrs,
        opset: 1,
        launch: None,
    }
}

fn is_float(pv: &PlanValue) -> bool {
    pv.dtype == "f32"
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
    // f16 where asked for and the adapter has shader-f16; otherwise every step stays f32
    // (`f16_support` says why, for the compile report).
    let f16 = opts.float == FloatPrecision::F16 && gpu.as_ref().is_some_and(|g| g.shader_f16);
    let cpu_plan = plan.clone();
    let weight = |v: usize| value_weight(&cpu_plan, &blob, v);
    let f32 = |v: usize| cpu_plan.values.get(v).is_some_and(|pv| pv.dtype == "f32");
    for step in &mut plan.steps {
        let Some((kernel, variants)) = kernels::select(step, &weight, &f32) else {
            if crate::int8::is_int8_layer(step) {
                crate::int8::mark(step);
            } else if crate::int8::is_weight_only_layer(step) {
                // Its weights' stored type: input 1 (W), or the blocked one it dequantizes.
                let dtype = step.inputs.get(1).copied().flatten().and_then(|v| cpu_plan.values.get(v)).map(|pv| pv.dtype.clone());
                crate::int8::mark_weight_only(step, dtype.as_deref().unwrap_or("weight-only"));
            }
            continue;
        };
        step.kernel = kernel.to_string();
        step.variant = variants[0].to_string();
        if (kernel == kernels::qmatmul::KERNEL || kernel == kernels::qmatmul::CONV) && !f16 {
            step.attrs.insert(kernels::PRECISION.into(), AttrValue::String("int8".into()));
        }
        if f16 && !kernels::only_relabels(kernel) && !kernels::output_on_host(kernel) {
            let float = if kernels::takes_f16(kernel) { Float::F16 } else { Float::F32 };
            step.attrs.insert(kernels::PRECISION.into(), AttrValue::String(float.name().into()));
        }
        if let Some(g) = &gpu {
            let (variant, launch) = tune::tune_step(g, &cpu_plan, step, variants, opts, tuner, &weight)?;
            step.variant = variant;
            step.launch = launch;
        }
    }

    // Residency: inputs start on the host; constants live on both sides (wgpu steps' weights
    // are uploaded once, at load, in the float type of the steps reading them). A device
    // value is stored as its producer's float type; transfers convert to and from the
    // host's f32.
    let values = &plan.values;
    let n = values.len();
    let mut on_host = vec![false; n];
    let mut on_gpu = vec![false; n];
    let mut stored = vec![Float::F32; n];
    for &v in &plan.inputs {
        on_host[v] = true;
    }
    for (v, pv) in values.iter().enumerate() {
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
        let mut s = if keep_cpu { cpu_plan.steps[i].clone() } else { s.clone() };
        let gpu_step = is_gpu(&s);
        if kernels::output_on_host(&s.kernel) {
            // Reads the device value's shape only: no transfer in, its output on the host.
            for &v in s.outputs.iter().flatten() {
                (on_gpu[v], on_host[v]) = (false, true);
            }
            steps.push(s);
            continue;
        }
        // A relabelling step's output is its input's buffer: stored as the input is.
        if gpu_step
            && kernels::only_relabels(&s.kernel)
            && let Some(v) = input
            && stored[v] == Float::F16
        {
            s.attrs.insert(kernels::PRECISION.into(), AttrValue::String(Float::F16.name().into()));
        }
        let float = if gpu_step { kernels::precision(&s).map_err(|reason| lower_error(&s, reason))? } else { Float::F32 };
        let host_reads = if gpu_step { kernels::host_inputs(&s.kernel) } else { &[] };
        for j in 0..s.inputs.len() {
            let Some(v) = s.inputs[j] else { continue };
            if host_reads.contains(&j) {
                if !on_host[v] {
                    steps.push(transfer(&values[v].name, v, READBACK, stored[v]));
                    on_host[v] = true;
                }
            } else if gpu_step && !on_gpu[v] {
                let up = if is_float(&values[v]) { float } else { Float::F32 };
                steps.push(transfer(&values[v].name, v, UPLOAD, up));
                on_gpu[v] = true;
                stored[v] = up;
            } else if gpu_step && values[v].weight.is_none() && is_float(&values[v]) && stored[v] != float {
                // Every kernel has an f16 form (`kernels::takes_f16`), so this is a kernel
                // added without one.
                let reason = format!(
                    "{} stores {} but reads '{}', stored as {} on the device: the kernel needs an {} form",
                    s.kernel,
                    float.name(),
                    values[v].name,
                    stored[v].name(),
                    stored[v].name()
                );
                return Err(lower_error(&s, reason));
            } else if !gpu_step && !on_host[v] {
                steps.push(transfer(&values[v].name, v, READBACK, stored[v]));
                on_host[v] = true;
            }
        }
        for &v in s.outputs.iter().flatten() {
            on_gpu[v] = gpu_step;
            on_host[v] = !gpu_step;
            stored[v] = float;
        }
        steps.push(s);
    }
    for &v in &plan.outputs {
        if !on_host[v] {
            steps.push(transfer(&values[v].name, v, READBACK, stored[v]));
            on_host[v] = true;
        }
    }
    plan.steps = steps;
    let blob = if f16 { narrow_weights(&mut plan, &blob)? } else { blob };
    Ok((plan, blob))
}

/// In an f16 plan, the constants only f16 steps read, and only as device buffers, are stored
/// as f16 in weights.bin (half the bytes); the rest (read by CPU steps, or on the host at
/// load, or plan outputs) stay f32.
fn narrow_weights(plan: &mut Plan, blob: &[u8]) -> Result<Vec<u8>, TargetError> {
    let mut narrow: Vec<Option<bool>> = vec![None; plan.weights.len()];
    let mut veto = |w: usize, ok: bool| {
        if let Some(n) = narrow.get_mut(w) {
            *n = Some(n.unwrap_or(true) && ok);
        }
    };
    for s in &plan.steps {
        let f16_step = is_gpu(s) && kernels::precision(s) == Ok(Float::F16);
        for (j, v) in s.inputs.iter().enumerate() {
            if let Some(w) = v.and_then(|v| plan.values[v].weight) {
                veto(w, f16_step && kernels::binds_on_device(s, j));
            }
        }
        for a in s.attrs.values() {
            if let AttrValue::Tensor(w) = a {
                veto(*w, false);
            }
        }
    }
    for &v in &plan.outputs {
        if let Some(w) = plan.values[v].weight {
            veto(w, false);
        }
    }
    let narrow: Vec<bool> = narrow.into_iter().map(|n| n == Some(true)).collect();
    let bytes = crate::weights::narrow_to_f16(plan, blob, &narrow)
        .map_err(|reason| TargetError::Plan { path: "<wgpu plan>".into(), reason })?;
    for pv in &mut plan.values {
        if let Some(w) = pv.weight
            && plan.weights[w].dtype == "f16"
        {
            pv.dtype = "f16".into();
        }
    }
    Ok(bytes)
}
