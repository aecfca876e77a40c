//! `wgpu.split`: `Split` of an f32 value along one axis (steps the CPU target leaves to the
//! reference kernel), sizes from a constant input, the attribute, `num_outputs` or the number
//! of outputs, as the reference executor reads them: one copy dispatch per output from its
//! slab of the input. Variants: workgroup size.

use super::act::{step_int, step_ints};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d};
use kiln_target::{Launch, Step};
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.split";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [n (this output's elements), inner_out, inner_in, offset]
const SOURCE: &str = r#"
    y[i] = x[(i / P(1u)) * P(2u) + P(3u) + i % P(1u)];
"#;

/// Where the sizes come from.
#[derive(Clone)]
enum Sizes {
    Given(Vec<i64>),
    /// `num_outputs` parts, the last may be smaller (opset 18).
    Parts(usize),
    /// As many equal parts as outputs.
    Equal(usize),
}

fn sizes_of(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Sizes> {
    if let Some(v) = step.inputs.get(1).copied().flatten() {
        return weight(v)?.to_i64_vec().ok().map(Sizes::Given);
    }
    if let Some(s) = step_ints(step, "split") {
        return Some(Sizes::Given(s));
    }
    match step_int(step, "num_outputs") {
        Some(n) => usize::try_from(n).ok().filter(|&n| n > 0).map(Sizes::Parts),
        None => Some(Sizes::Equal(step.outputs.len())).filter(|_| !step.outputs.is_empty()),
    }
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>, f32: &dyn Fn(usize) -> bool) -> bool {
    step.domain.is_empty()
        && step.op == "Split"
        && step.inputs.first().copied().flatten().is_some_and(f32)
        && sizes_of(step, weight).is_some()
}

/// (axis, sizes along it) at input shape `x`.
fn plan(axis: i64, sizes: &Sizes, x: &[usize]) -> Result<(usize, Vec<usize>), String> {
    let r = x.len();
    let a = if axis < 0 { axis + r as i64 } else { axis };
    let a = usize::try_from(a).ok().filter(|&a| a < r).ok_or_else(|| format!("axis {axis} is out of range for rank {r}"))?;
    let dim = x[a];
    let parts = |n: usize, part: usize| {
        let mut left = dim;
        (0..n)
            .map(|_| {
                let s = part.min(left);
                left -= s;
                s
            })
            .collect()
    };
    let sizes = match sizes {
        Sizes::Given(s) => {
            if s.iter().any(|&v| v < 0) || s.iter().sum::<i64>() != dim as i64 {
                return Err(format!("split sizes {s:?} must be non-negative and sum to {dim}, the size of axis {a}"));
            }
            s.iter().map(|&v| v as usize).collect()
        }
        Sizes::Parts(n) => parts(*n, dim.div_ceil(*n)),
        Sizes::Equal(n) if dim.is_multiple_of(*n) => parts(*n, dim / n),
        Sizes::Equal(n) => return Err(format!("axis {a} of size {dim} cannot be split into {n} equal parts")),
    };
    Ok((a, sizes))
}

pub fn launch(variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let wg = super::elementwise::workgroup(variant);
    // One dispatch per output; together they cover the input.
    Some(Launch { grid: groups_1d(shapes.first()?.as_ref()?.iter().product(), wg), block: [wg, 1, 1], shared_bytes: 0 })
}

pub struct Split {
    pipeline: wgpu::ComputePipeline,
    axis: i64,
    sizes: Sizes,
    wg: u32,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let sizes = sizes_of(step, cx.weight).ok_or("the split sizes are not a constant")?;
    let (p, wg) = super::per_element(cx.gpu, KERNEL, &step.variant, super::precision(step)?, &[("x", "ST")], 0, SOURCE)?;
    Ok(Box::new(Split { pipeline: p, axis: step_int(step, "axis").unwrap_or(0), sizes, wg }))
}

impl GpuKernel for Split {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let mut outs = self.encode_all(cx, inputs)?.into_iter();
        let first = outs.next().ok_or("Split has no outputs")?;
        outs.for_each(|t| cx.pool.give(t));
        Ok(first)
    }

    fn encode_all(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<Vec<GpuTensor>, String> {
        let x = inputs.first().copied().flatten().ok_or("input is missing")?;
        let (a, sizes) = plan(self.axis, &self.sizes, &x.shape)?;
        let after: usize = x.shape[a + 1..].iter().product();
        let inner_in = x.shape[a] * after;
        let mut outs = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for s in sizes {
            let mut shape = x.shape.clone();
            shape[a] = s;
            let y = cx.output(&shape)?;
            let n = y.len();
            if n > 0 {
                let params = [n as u32, (s * after) as u32, inner_in as u32, (start * after) as u32];
                dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &y.buf], groups_1d(n, self.wg))?;
            }
            start += s;
            outs.push(y);
        }
        Ok(outs)
    }
}
