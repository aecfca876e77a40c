//! `wgpu.reduce`: reductions of f32 over any set of axes, keepdims or not: the steps the CPU
//! target puts on `cpu.reduce` (`ReduceMean` / `Sum` / `Max` / `Min`, axes from the attribute
//! or a constant input) and `cpu.global_pool` (`GlobalAveragePool` / `GlobalMaxPool`: the
//! axes past the channel). One shader generated per op: the kept and reduced axes, merged
//! where contiguous, index the input through strides. Variants: `r{WG}` a workgroup per
//! output (a tree reduction through workgroup memory), `t{WG}` a thread per output (a serial
//! loop, no workgroup memory).

use super::act::{PRELUDE, step_int, step_ints};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{Float, GpuTensor, PARAMS_WGSL, dispatch, groups_1d, pipeline};
use kiln_target::{Launch, Step};
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.reduce";
pub const VARIANTS: &[&str] = &["r64", "t64", "r256", "t256"];

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Mean,
    Sum,
    Max,
    Min,
}

fn op_of(step: &Step) -> Option<Op> {
    if !step.domain.is_empty() {
        return None;
    }
    match step.op.as_str() {
        "ReduceMean" | "GlobalAveragePool" => Some(Op::Mean),
        "ReduceSum" => Some(Op::Sum),
        "ReduceMax" | "GlobalMaxPool" => Some(Op::Max),
        "ReduceMin" => Some(Op::Min),
        _ => None,
    }
}

/// Which axes a step reduces, known at load.
#[derive(Clone, PartialEq, Debug)]
enum Axes {
    /// Every axis past the first two (global pooling).
    Spatial,
    /// The listed axes (may be negative); empty means all, or none with `noop`.
    List { axes: Vec<i64>, noop: bool },
}

fn axes_of(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Axes> {
    if step.op.starts_with("Global") {
        return Some(Axes::Spatial);
    }
    let axes = match (step_ints(step, "axes"), step.inputs.get(1).copied().flatten()) {
        (Some(a), _) => a,
        (None, None) => Vec::new(),
        (None, Some(v)) => weight(v)?.to_i64_vec().ok()?,
    };
    Some(Axes::List { axes, noop: step_int(step, "noop_with_empty_axes").unwrap_or(0) != 0 })
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> bool {
    op_of(step).is_some() && axes_of(step, weight).is_some() && step.outputs.iter().filter(|o| o.is_some()).count() == 1
}

/// A reduction at one input shape: output shape, outputs, elements per output, and the
/// kept / reduced (dim, stride) runs after merging contiguous axes.
struct Problem {
    out: Vec<usize>,
    n: usize,
    mid: usize,
    kept: Vec<(usize, usize)>,
    red: Vec<(usize, usize)>,
}

/// Appends (dim, stride), merging into the previous run when the two are contiguous.
fn push_run(runs: &mut Vec<(usize, usize)>, dim: usize, stride: usize) {
    if dim == 1 {
        return;
    }
    match runs.last_mut() {
        Some(last) if last.1 == stride * dim => *last = (last.0 * dim, stride),
        _ => runs.push((dim, stride)),
    }
}

fn problem(axes: &Axes, keepdims: bool, shape: &[usize]) -> Result<Option<Problem>, String> {
    let r = shape.len();
    let mut reduced = vec![false; r];
    match axes {
        Axes::Spatial => {
            if r < 3 {
                return Err(format!("X must have rank >= 3, got {shape:?}"));
            }
            reduced[2..].iter_mut().for_each(|b| *b = true);
        }
        Axes::List { axes, noop } if axes.is_empty() => {
            if *noop {
                return Ok(None);
            }
            reduced.iter_mut().for_each(|b| *b = true);
        }
        Axes::List { axes, .. } => {
            for &a in axes {
                let v = if a < 0 { a + r as i64 } else { a };
                let k = usize::try_from(v).ok().filter(|&v| v < r).ok_or_else(|| format!("axis {a} is out of range for rank {r}"))?;
                reduced[k] = true;
            }
        }
    }
    let mut stride = 1;
    let mut strides = vec![0; r];
    for k in (0..r).rev() {
        strides[k] = stride;
        stride *= shape[k];
    }
    let (mut kept, mut red, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..r {
        if reduced[k] {
            push_run(&mut red, shape[k], strides[k]);
            if keepdims || matches!(axes, Axes::Spatial) {
                out.push(1);
            }
        } else {
            push_run(&mut kept, shape[k], strides[k]);
            out.push(shape[k]);
        }
    }
    let n = out.iter().product();
    let mid = (0..r).filter(|&k| reduced[k]).map(|k| shape[k]).product();
    Ok(Some(Problem { out, n, mid, kept, red }))
}

/// The shader for one op and variant: `P(i)` parameters are
/// `[outputs, mid, kept runs, reduced runs, groups_x, (dim, stride) kept..., (dim, stride) reduced...]`.
fn shader(op: Op, group: bool, wg: u32, float: Float) -> String {
    let comb = match op {
        Op::Mean | Op::Sum => "a + b",
        Op::Max => "k_max(a, b)",
        Op::Min => "k_min(a, b)",
    };
    let post = if op == Op::Mean { "a / f32(P(1u))" } else { "a" };
    // Max and min start from an element of their own share (repeats change nothing).
    let idempotent = matches!(op, Op::Max | Op::Min);
    let mut s = format!(
        "{}{PARAMS_WGSL}{PRELUDE}\n@group(0) @binding(1) var<storage, read> x: array<ST>;\n\
         @group(0) @binding(2) var<storage, read_write> y: array<ST>;\n\
         fn comb(a: f32, b: f32) -> f32 {{ return {comb}; }}\n\
         fn post(a: f32) -> f32 {{ return {post}; }}\n\
         fn offset(i: u32, runs: u32, at: u32) -> u32 {{\n\
         \x20   var rem = i;\n    var off = 0u;\n\
         \x20   for (var d: i32 = i32(runs) - 1; d >= 0; d = d - 1) {{\n\
         \x20       let dim = P(at + 2u * u32(d));\n        off = off + (rem % dim) * P(at + 2u * u32(d) + 1u);\n        rem = rem / dim;\n    }}\n\
         \x20   return off;\n}}\n\
         fn elem(base: u32, i: u32) -> f32 {{ return f32(x[base + offset(i, P(3u), 5u + 2u * P(2u))]); }}\n",
        float.header()
    );
    let (init, first) = if idempotent { ("elem(base, min(t, mid - 1u))", "t + STEP") } else { ("0.0", "t") };
    let body = format!("    var acc = {init};\n    for (var i = {first}; i < mid; i = i + STEP) {{ acc = comb(acc, elem(base, i)); }}\n");
    if group {
        s.push_str(&format!(
            "var<workgroup> red: array<f32, {wg}>;\n\
             @compute @workgroup_size({wg}, 1, 1)\n\
             fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {{\n\
             \x20   let n = P(0u);\n    let mid = P(1u);\n    let o = wid.x + wid.y * P(4u);\n\
             \x20   // Barriers need uniform control flow: a workgroup past the end works on the last\n\
             \x20   // output and skips the store.\n\
             \x20   let base = offset(min(o, n - 1u), P(2u), 5u);\n    let t = lid.x;\n{}\
             \x20   red[t] = acc;\n    workgroupBarrier();\n\
             \x20   for (var s = {wg}u / 2u; s > 0u; s = s / 2u) {{\n\
             \x20       if (t < s) {{ red[t] = comb(red[t], red[t + s]); }}\n        workgroupBarrier();\n    }}\n\
             \x20   if (o < n && t == 0u) {{ y[o] = to_st(post(red[0])); }}\n}}\n",
            body.replace("STEP", &format!("{wg}u"))
        ));
    } else {
        s.push_str(&format!(
            "@compute @workgroup_size({wg}, 1, 1)\n\
             fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {{\n\
             \x20   let n = P(0u);\n    let mid = P(1u);\n    let o = gid.x + gid.y * nw.x * {wg}u;\n    if (o >= n) {{ return; }}\n\
             \x20   let base = offset(o, P(2u), 5u);\n    let t = 0u;\n{}\
             \x20   y[o] = to_st(post(acc));\n}}\n",
            body.replace("STEP", "1u")
        ));
    }
    s
}

/// (a workgroup per output, threads per workgroup) of a variant.
fn parse(variant: &str) -> (bool, u32) {
    let group = !variant.starts_with('t');
    let wg = variant.get(1..).and_then(|w| w.parse().ok()).filter(|w: &u32| w.is_power_of_two()).unwrap_or(64);
    (group, wg)
}

/// Threads per workgroup and workgroup memory bytes of a variant.
pub fn footprint(variant: &str) -> (u32, u32) {
    let (group, wg) = parse(variant);
    (wg, if group { wg * 4 } else { 0 })
}

fn grid(group: bool, wg: u32, n: usize) -> [u32; 3] {
    if group {
        let gx = n.clamp(1, 65535);
        [gx as u32, n.div_ceil(gx).max(1) as u32, 1]
    } else {
        groups_1d(n, wg)
    }
}

/// The launch geometry of a variant at the input shapes.
pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>], weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Launch> {
    let shape = shapes.first()?.as_ref()?;
    let axes = axes_of(step, weight)?;
    let p = problem(&axes, step_int(step, "keepdims").unwrap_or(1) != 0, shape).ok()??;
    let (group, wg) = parse(variant);
    Some(Launch { grid: grid(group, wg, p.n), block: [wg, 1, 1], shared_bytes: footprint(variant).1 })
}

pub struct Reduce {
    pipeline: wgpu::ComputePipeline,
    op: Op,
    axes: Axes,
    keepdims: bool,
    group: bool,
    wg: u32,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let op = op_of(step).ok_or_else(|| format!("{} is not a reduction this kernel runs", step.op))?;
    let axes = axes_of(step, cx.weight).ok_or("the axes are not an attribute or a constant")?;
    let (group, wg) = parse(&step.variant);
    let p = pipeline(cx.gpu, KERNEL, &step.variant, &shader(op, group, wg, super::precision(step)?)).map_err(|e| e.to_string())?;
    Ok(Box::new(Reduce { pipeline: p, op, axes, keepdims: step_int(step, "keepdims").unwrap_or(1) != 0, group, wg }))
}

impl GpuKernel for Reduce {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input is missing")?;
        let Some(p) = problem(&self.axes, self.keepdims, &x.shape)? else { return Ok(x.clone()) };
        if p.mid == 0 && matches!(self.op, Op::Max | Op::Min) {
            return Err("cannot take the max or min of an empty set".into());
        }
        let y = cx.output(&p.out)?;
        if p.n == 0 {
            return Ok(y);
        }
        let g = grid(self.group, self.wg, p.n);
        let mut params = vec![p.n as u32, p.mid as u32, p.kept.len() as u32, p.red.len() as u32, g[0]];
        for &(d, s) in p.kept.iter().chain(&p.red) {
            params.extend([d as u32, s as u32]);
        }
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &y.buf], g)?;
        Ok(y)
    }
}
