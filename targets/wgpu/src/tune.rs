//! Measuring a wgpu step's variants on the adapter (default first, under the tuner's budget;
//! variants the adapter's limits rule out are pruned before anything is compiled).

use crate::device::Gpu;
use crate::kernels::{self, Encoded, KernelCtx};
use crate::runtime::{Pool, encoder, finish, upload_as};
use kiln_target::{CompileOptions, Launch, Plan, PlanValue, Step, TargetError, TuneKey, Tuner};
use kiln_tensor::Tensor;
use std::time::Instant;

/// The step's input shapes at the tuning dims, when all are known.
pub fn input_shapes(plan: &Plan, step: &Step, opts: &CompileOptions) -> Option<Vec<Option<Vec<usize>>>> {
    step.inputs
        .iter()
        .map(|i| match i {
            None => Some(None),
            Some(v) => Some(Some(value_shape(plan.values.get(*v)?, opts)?)),
        })
        .collect()
}

/// A value's shape at the tuning dims, when known.
pub fn value_shape(pv: &PlanValue, opts: &CompileOptions) -> Option<Vec<usize>> {
    if let Some(s) = opts.tuning_shapes.get(&pv.name) {
        return Some(s.clone());
    }
    // Unbound symbolic dims: not tuned (a guess could be an invalid size).
    pv.shape.as_ref()?.iter().map(|d| d.resolve(&opts.dims)).collect()
}

/// Whether the adapter can run `variant` of `kernel` at all.
pub fn fits(gpu: &Gpu, kernel: &str, variant: &str) -> bool {
    let (threads, shared) = kernels::footprint(kernel, variant);
    threads <= gpu.limits.max_compute_invocations_per_workgroup && shared <= gpu.limits.max_compute_workgroup_storage_size
}

fn filler(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
}

pub fn tune_step(
    gpu: &Gpu,
    plan: &Plan,
    step: &Step,
    variants: &[&str],
    opts: &CompileOptions,
    tuner: &mut Tuner,
    weight: &dyn Fn(usize) -> Option<Tensor>,
) -> Result<(String, Option<Launch>), TargetError> {
    let cands: Vec<String> =
        variants.iter().enumerate().filter(|(i, v)| *i == 0 || fits(gpu, &step.kernel, v)).map(|(_, v)| v.to_string()).collect();
    let default = cands[0].clone();
    let Some(shapes) = input_shapes(plan, step, opts) else { return Ok((default, None)) };
    // Shapes and the attributes that change the work (two convolutions of one shape but other
    // strides are different problems).
    let shape_text: Vec<String> = shapes.iter().map(|s| s.as_ref().map_or("-".into(), |s| format!("{s:?}"))).collect();
    let mut problem = format!(
        "{}{} {}",
        if step.domain.is_empty() { String::new() } else { format!("{}::", step.domain) },
        step.op,
        shape_text.join(" ")
    );
    for k in [
        "strides",
        "pads",
        "dilations",
        "group",
        "layout",
        "transB",
        "perm",
        "axis",
        "k_transposed",
        "activation",
        "ops",
        "axes",
        "keepdims",
        "kernel_shape",
        "auto_pad",
        "ceil_mode",
        "output_padding",
        "mode",
        kernels::PRECISION,
    ] {
        if let Some(a) = step.attrs.get(k) {
            problem.push_str(&format!(" {k}={}", attr_text(a)));
        }
    }
    let key = TuneKey { kernel: step.kernel.clone(), problem };
    // Operands: the plan's constants where it has them, deterministic filler elsewhere, in
    // the step's float type.
    let float = kernels::precision(step).map_err(|reason| crate::lower::lower_error(step, reason))?;
    let mut inputs = Vec::new();
    for (i, s) in step.inputs.iter().zip(&shapes) {
        inputs.push(match (i, s) {
            (Some(v), Some(shape)) => match weight(*v) {
                Some(t) => t.as_slice::<f32>().ok().map(|d| upload_as(gpu, d, t.shape(), float)),
                None => Some(upload_as(gpu, &filler(shape.iter().product()), shape, float)),
            },
            _ => None,
        });
    }
    let mut pool = Pool::default();
    let mut measure = |variant: &str| -> Result<std::time::Duration, TargetError> {
        let mut s = step.clone();
        s.variant = variant.to_string();
        let bad = |reason: String| crate::lower::lower_error(step, reason);
        let k = kernels::load(&s, &KernelCtx { gpu, weight }).map_err(bad)?;
        let refs: Vec<Option<&crate::runtime::GpuTensor>> = inputs.iter().map(Option::as_ref).collect();
        let t = Instant::now();
        let mut enc = encoder(gpu);
        let outs = k.encode_all(&mut Encoded { gpu, pool: &mut pool, enc: &mut enc, host: &[], float }, &refs).map_err(bad)?;
        finish(gpu, enc).map_err(|e| bad(e.to_string()))?;
        let d = t.elapsed();
        outs.into_iter().for_each(|o| pool.give(o));
        Ok(d)
    };
    // A step that cannot be measured at these sizes (shapes inference could not pin down)
    // keeps its default rather than failing the compile; running it checks it for real.
    let Ok(chosen) = tuner.choose(key, &cands, &mut measure) else { return Ok((default, None)) };
    let launch = kernels::launch(step, &chosen, &shapes, weight);
    Ok((chosen, launch))
}

fn attr_text(a: &kiln_target::AttrValue) -> String {
    use kiln_target::AttrValue::*;
    match a {
        Int(i) => i.to_string(),
        Float(f) => f.to_string(),
        Ints(v) => format!("{v:?}"),
        Floats(v) => format!("{v:?}"),
        String(s) => s.clone(),
        Strings(v) => v.join(","),
        Tensor(i) => format!("tensor{i}"),
    }
}
