//! Running a wgpu plan: wgpu steps record into one command encoder, runs of CPU steps execute
//! on a `CpuExecutable` built from that segment of the plan, transfer steps move values
//! between them (a readback submits what is recorded and waits). Device buffers come from a
//! pool and return to it after each value's last reader.

use crate::device::Gpu;
use crate::kernels::{self, Encoded, GpuKernel, KernelCtx};
use crate::lower::{READBACK, TRANSFER, UPLOAD, is_gpu};
use crate::runtime::{Float, GpuTensor, Pool, encoder, readback, upload_as};
use crate::weights::{step_weights, sub_blob, value_weight};
use kiln_target::{Executable, Plan, StepTime, TargetError};
use kiln_target_cpu::CpuExecutable;
use kiln_tensor::{DType, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

enum Exec {
    /// A wgpu step and how it stores its floats.
    Gpu(Box<dyn GpuKernel>, Float),
    /// `wgpu.shape`: the shape of a device value, written to the host.
    Shape(kernels::shape::ShapeOf),
    /// A host value to the device, stored as the consumer's float type.
    Upload(usize, Float),
    Readback(usize),
    /// First step of a CPU segment.
    Cpu(usize),
    /// A later step of a CPU segment (ran with its first).
    InSegment,
}

struct Segment {
    exe: CpuExecutable,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

pub struct WgpuExecutable {
    gpu: Arc<Gpu>,
    plan: Plan,
    execs: Vec<Exec>,
    segments: Vec<Segment>,
    /// Constants read by wgpu steps, uploaded at load in the float type of the steps that
    /// read them.
    resident: HashMap<(usize, Float), GpuTensor>,
    /// Host copies of constants that are plan outputs.
    host_weights: HashMap<usize, Tensor>,
    free_after: Vec<Vec<usize>>,
    pool: Pool,
    /// Per-step (calls, seconds) while profiling is on (each wgpu step then waits for the
    /// adapter, so the times are the step's own).
    profile: Option<Vec<(u64, f64)>>,
}

fn plan_err(reason: String) -> TargetError {
    TargetError::Plan { path: "<loaded wgpu plan>".into(), reason }
}

impl WgpuExecutable {
    pub fn load(gpu: Arc<Gpu>, plan: &Plan, blob: Vec<u8>) -> Result<WgpuExecutable, TargetError> {
        let n = plan.values.len();
        let mut execs = Vec::with_capacity(plan.steps.len());
        let mut segments = Vec::new();
        let mut resident = HashMap::new();
        let weight = |v: usize| value_weight(plan, &blob, v);
        let mut i = 0;
        while i < plan.steps.len() {
            let s = &plan.steps[i];
            if s.kernel == TRANSFER {
                let v = s.inputs.first().copied().flatten().ok_or_else(|| plan_err(format!("transfer step {i} names no value")))?;
                execs.push(if s.op == UPLOAD {
                    Exec::Upload(v, kernels::precision(s).map_err(plan_err)?)
                } else if s.op == READBACK {
                    Exec::Readback(v)
                } else {
                    return Err(plan_err(format!("unknown transfer '{}'", s.op)));
                });
                i += 1;
            } else if s.kernel == kernels::shape::KERNEL {
                execs.push(Exec::Shape(kernels::shape::ShapeOf::load(s)));
                i += 1;
            } else if is_gpu(s) {
                let float = kernels::precision(s).map_err(|r| plan_err(format!("step {i} ({}): {r}", s.kernel)))?;
                for &v in s.inputs.iter().flatten() {
                    // Constants are f32, or f16 where only f16 steps bind them (widened here
                    // and stored as f16 again: exact).
                    if let Some(t) = weight(v).filter(|t| matches!(t.dtype(), DType::F32 | DType::F16))
                        && !resident.contains_key(&(v, float))
                    {
                        let t = t.cast(DType::F32).map_err(|e| plan_err(e.to_string()))?;
                        let data = t.as_slice::<f32>().map_err(|e| plan_err(e.to_string()))?;
                        resident.insert((v, float), upload_as(&gpu, data, t.shape(), float));
                    }
                }
                let k = kernels::load(s, &KernelCtx { gpu: &gpu, weight: &weight })
                    .map_err(|r| plan_err(format!("step {i} ({}): {r}", s.kernel)))?;
                execs.push(Exec::Gpu(k, float));
                i += 1;
            } else {
                let end =
                    (i..plan.steps.len()).find(|&j| plan.steps[j].kernel == TRANSFER || is_gpu(&plan.steps[j])).unwrap_or(plan.steps.len());
                segments.push(segment(plan, &blob, i, end)?);
                execs.push(Exec::Cpu(segments.len() - 1));
                execs.extend((i + 1..end).map(|_| Exec::InSegment));
                i = end;
            }
        }
        let mut last = vec![None; n];
        for (i, s) in plan.steps.iter().enumerate() {
            for &v in s.inputs.iter().flatten() {
                last[v] = Some(i);
            }
        }
        let mut free_after = vec![Vec::new(); plan.steps.len()];
        for (v, l) in last.iter().enumerate() {
            if let Some(step) = l
                && !plan.outputs.contains(&v)
                && plan.values[v].weight.is_none()
            {
                free_after[*step].push(v);
            }
        }
        let host_weights = plan.outputs.iter().filter_map(|&v| weight(v).map(|t| (v, t))).collect();
        Ok(WgpuExecutable {
            gpu,
            plan: plan.clone(),
            execs,
            segments,
            resident,
            host_weights,
            free_after,
            pool: Pool::default(),
            profile: None,
        })
    }
}

/// Steps `start..end` as a CPU plan of their own: the weights they read, the values they read
/// from outside as inputs, the values later steps (or the caller) read as outputs.
fn segment(plan: &Plan, blob: &[u8], start: usize, end: usize) -> Result<Segment, TargetError> {
    let steps = &plan.steps[start..end];
    let keep: Vec<usize> = steps.iter().flat_map(|s| step_weights(plan, s)).collect();
    let (refs, bytes, map) = sub_blob(plan, blob, &keep).map_err(plan_err)?;
    let mut sub = plan.clone();
    sub.target.kind = "cpu".into();
    sub.weights = refs;
    for pv in &mut sub.values {
        pv.weight = pv.weight.and_then(|w| map.get(w).copied().flatten());
    }
    sub.steps = steps.to_vec();
    for s in &mut sub.steps {
        for a in s.attrs.values_mut() {
            if let kiln_target::AttrValue::Tensor(i) = a {
                *i = map
                    .get(*i)
                    .copied()
                    .flatten()
                    .ok_or_else(|| plan_err(format!("step '{}' names weight {i}, which does not exist", s.node)))?;
            }
        }
    }
    let produced: std::collections::HashSet<usize> = steps.iter().flat_map(|s| s.outputs.iter().flatten().copied()).collect();
    let mut inputs = Vec::new();
    for s in steps {
        for &v in s.inputs.iter().flatten() {
            if !produced.contains(&v) && sub.values[v].weight.is_none() && !inputs.contains(&v) {
                inputs.push(v);
            }
        }
    }
    let later: std::collections::HashSet<usize> = plan.steps[end..].iter().flat_map(|s| s.inputs.iter().flatten().copied()).collect();
    let outputs: Vec<usize> =
        steps.iter().flat_map(|s| s.outputs.iter().flatten().copied()).filter(|v| later.contains(v) || plan.outputs.contains(v)).collect();
    for &v in &inputs {
        // Shapes were checked where the value was made; dims bind per call.
        sub.values[v].shape = None;
        sub.values[v].dtype = "?".into();
    }
    sub.inputs = inputs.clone();
    sub.outputs = outputs.clone();
    Ok(Segment { exe: CpuExecutable::load(&sub, bytes)?, inputs, outputs })
}

/// A host value as the words its device copy holds: f32 as is, int64 / int32 (gather
/// indices) as int32 bits.
fn device_words(t: &Tensor) -> Result<std::borrow::Cow<'_, [f32]>, String> {
    match t.dtype() {
        DType::F32 => t.as_slice::<f32>().map(std::borrow::Cow::Borrowed).map_err(|e| e.to_string()),
        DType::I64 | DType::I32 => {
            kernels::gather::index_bits(t).map(std::borrow::Cow::Owned).ok_or_else(|| format!("cannot read {} indices", t.dtype()))
        }
        other => Err(format!("the adapter takes f32 values (and int indices), this one is {other}")),
    }
}

impl Executable for WgpuExecutable {
    fn run(&mut self, inputs: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>, TargetError> {
        let n = self.plan.values.len();
        let mut host: Vec<Option<Tensor>> = vec![None; n];
        let mut dev: Vec<Option<GpuTensor>> = vec![None; n];
        for (name, t) in inputs {
            let &v = self.plan.inputs.iter().find(|&&v| self.plan.values[v].name == name).ok_or_else(|| TargetError::Input {
                name: name.clone(),
                reason: format!(
                    "not an input of this plan (inputs: {})",
                    self.plan.inputs.iter().map(|&v| self.plan.values[v].name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })?;
            let pv = &self.plan.values[v];
            if pv.dtype != "?" && pv.dtype != t.dtype().name() {
                return Err(TargetError::Input { name, reason: format!("expects {} elements, got {}", pv.dtype, t.dtype()) });
            }
            if pv.shape.as_ref().is_some_and(|s| s.len() != t.rank()) {
                return Err(TargetError::Input {
                    name,
                    reason: format!("expects rank {}, got shape {:?}", pv.shape.as_ref().map_or(0, Vec::len), t.shape()),
                });
            }
            host[v] = Some(t);
        }
        if let Some(&missing) = self.plan.inputs.iter().find(|&&v| host[v].is_none()) {
            return Err(TargetError::Input {
                name: self.plan.values[missing].name.clone(),
                reason: "is required but was not given".into(),
            });
        }
        let gpu = self.gpu.clone();
        let mut enc = encoder(&gpu);
        for i in 0..self.execs.len() {
            let started = self.profile.as_ref().map(|_| std::time::Instant::now());
            let kernel = self.plan.steps[i].kernel.clone();
            let run_err = |reason: String| TargetError::Run { step: i, kernel: kernel.clone(), reason };
            let name = |v: usize| self.plan.values[v].name.clone();
            match &self.execs[i] {
                Exec::Upload(v, float) => {
                    let t = host[*v].as_ref().ok_or_else(|| run_err(format!("value '{}' is not on the host to upload", name(*v))))?;
                    // Indices go up as int32 bits, whatever the consumer's float type.
                    let float = if t.dtype() == DType::F32 { *float } else { Float::F32 };
                    let staging = upload_as(&gpu, &device_words(t).map_err(run_err)?, t.shape(), float);
                    let dst = self.pool.take(&gpu, t.shape(), float).map_err(|e| run_err(e.to_string()))?;
                    // Copied inside the encoder, so it stays ordered with the recorded dispatches.
                    enc.copy_buffer_to_buffer(&staging.buf, 0, &dst.buf, 0, staging.buf.size().min(dst.buf.size()));
                    dev[*v] = Some(dst);
                }
                Exec::Readback(v) => {
                    let t = dev[*v].as_ref().ok_or_else(|| run_err(format!("value '{}' is not on the device to read back", name(*v))))?;
                    let pending = std::mem::replace(&mut enc, encoder(&gpu));
                    let data = readback(&gpu, pending, t).map_err(|e| run_err(e.to_string()))?;
                    host[*v] = Some(Tensor::from_vec(t.shape.clone(), data).map_err(|e| run_err(e.to_string()))?);
                }
                Exec::Shape(q) => {
                    let step = &self.plan.steps[i];
                    let (Some(Some(v)), Some(Some(o))) = (step.inputs.first(), step.outputs.first()) else {
                        return Err(run_err("a shape step needs one input and one output".into()));
                    };
                    let resident = self.resident.iter().find(|((r, _), _)| r == v).map(|(_, t)| t);
                    let dims = match (dev[*v].as_ref().or(resident), host[*v].as_ref()) {
                        (Some(t), _) => t.shape.clone(),
                        (None, Some(t)) => t.shape().to_vec(),
                        (None, None) => return Err(run_err(format!("value '{}' is nowhere", name(*v)))),
                    };
                    host[*o] = Some(q.run(&dims).map_err(run_err)?);
                }
                Exec::Gpu(k, float) => {
                    let step = &self.plan.steps[i];
                    let on_host = kernels::host_inputs(&step.kernel);
                    let mut ins = Vec::with_capacity(step.inputs.len());
                    let mut hosts = Vec::with_capacity(step.inputs.len());
                    for (j, v) in step.inputs.iter().enumerate() {
                        let read_on_host = on_host.contains(&j);
                        hosts.push(if read_on_host { v.and_then(|v| host[v].as_ref()) } else { None });
                        ins.push(match v {
                            None => None,
                            Some(_) if read_on_host => None,
                            Some(v) => match self.resident.get(&(*v, *float)) {
                                Some(t) => Some(t),
                                None if self.plan.values[*v].weight.is_some() => None,
                                None => {
                                    Some(dev[*v].as_ref().ok_or_else(|| run_err(format!("value '{}' is not on the device", name(*v))))?)
                                }
                            },
                        });
                    }
                    let cx = &mut Encoded { gpu: &gpu, pool: &mut self.pool, enc: &mut enc, host: &hosts, float: *float };
                    let outs = k.encode_all(cx, &ins).map_err(run_err)?;
                    for (o, t) in step.outputs.iter().zip(outs) {
                        match o {
                            Some(o) => dev[*o] = Some(t),
                            None => self.pool.give(t),
                        }
                    }
                }
                Exec::Cpu(seg) => {
                    let seg = &mut self.segments[*seg];
                    let mut args = Vec::with_capacity(seg.inputs.len());
                    for &v in &seg.inputs {
                        let t =
                            host[v].clone().ok_or_else(|| run_err(format!("value '{}' is not on the host", self.plan.values[v].name)))?;
                        args.push((self.plan.values[v].name.clone(), t));
                    }
                    let outs = seg.exe.run(args)?;
                    for (&v, (_, t)) in seg.outputs.iter().zip(outs) {
                        host[v] = Some(t);
                    }
                }
                Exec::InSegment => {}
            }
            if let (Some(t), Some(_)) = (started, self.profile.as_ref()) {
                if matches!(self.execs[i], Exec::Gpu(..) | Exec::Upload(..)) {
                    let pending = std::mem::replace(&mut enc, encoder(&gpu));
                    crate::runtime::finish(&gpu, pending).map_err(|e| run_err(e.to_string()))?;
                }
                if let Some(p) = self.profile.as_mut() {
                    p[i].0 += 1;
                    p[i].1 += t.elapsed().as_secs_f64();
                }
            }
            for &v in &self.free_after[i] {
                host[v] = None;
                if let Some(t) = dev[v].take() {
                    self.pool.give(t);
                }
            }
        }
        let mut outs = Vec::with_capacity(self.plan.outputs.len());
        for &v in &self.plan.outputs {
            let name = self.plan.values[v].name.clone();
            let t = match self.host_weights.get(&v) {
                Some(t) => t.clone(),
                None => host[v].take().ok_or_else(|| TargetError::Run {
                    step: self.plan.steps.len(),
                    kernel: "output".into(),
                    reason: format!("output '{name}' was not produced"),
                })?,
            };
            outs.push((name, t));
        }
        for t in dev.into_iter().flatten() {
            self.pool.give(t);
        }
        Ok(outs)
    }

    fn planned_peak_bytes(&self) -> Option<u64> {
        Some(self.pool.allocated_bytes)
    }

    fn set_profiling(&mut self, on: bool) -> bool {
        self.profile = on.then(|| vec![(0, 0.0); self.plan.steps.len()]);
        true
    }

    /// A CPU segment's time is reported on its first step.
    fn step_times(&self) -> Vec<StepTime> {
        self.profile.as_deref().map_or_else(Vec::new, |p| kiln_target::step_times(&self.plan, p))
    }
}
