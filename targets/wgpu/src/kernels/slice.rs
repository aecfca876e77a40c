//! `wgpu.slice`: `Slice` of an f32 value (steps the CPU target leaves to the reference
//! kernel) with constant starts, ends, axes and steps (attributes before opset 10), negative
//! steps included, clamped as the reference executor clamps them: a thread per output
//! element reads its strided source. Variants: workgroup size.

use super::act::step_ints;
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d};
use kiln_target::{Launch, Step};
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.slice";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [n, rank, base offset (i32), out dims [rank], source step per axis (i32) [rank]]
const SOURCE: &str = r#"
    let r = P(1u);
    var rem = i;
    var off = bitcast<i32>(P(2u));
    for (var d: i32 = i32(r) - 1; d >= 0; d = d - 1) {
        let dim = P(3u + u32(d));
        off = off + i32(rem % dim) * bitcast<i32>(P(3u + r + u32(d)));
        rem = rem / dim;
    }
    y[i] = x[u32(off)];
"#;

/// (starts, ends, axes, steps) as given.
type Bounds = (Vec<i64>, Vec<i64>, Option<Vec<i64>>, Option<Vec<i64>>);

fn bounds(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Bounds> {
    if step.opset < 10 {
        return Some((step_ints(step, "starts")?, step_ints(step, "ends")?, step_ints(step, "axes"), None));
    }
    let get = |i: usize| -> Option<Option<Vec<i64>>> {
        match step.inputs.get(i).copied().flatten() {
            None => Some(None),
            Some(v) => Some(Some(weight(v)?.to_i64_vec().ok()?)),
        }
    };
    Some((get(1)??, get(2)??, get(3)?, get(4)?))
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>, f32: &dyn Fn(usize) -> bool) -> bool {
    step.domain.is_empty()
        && step.op == "Slice"
        && step.inputs.first().copied().flatten().is_some_and(f32)
        && bounds(step, weight).is_some()
}

/// The output shape and the parameters at input shape `x` (the reference's clamping).
fn problem(b: &Bounds, x: &[usize]) -> Result<(Vec<usize>, Vec<u32>), String> {
    let (starts, ends, axes, steps) = b;
    let n = starts.len();
    let r = x.len();
    let axes = axes.clone().unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.clone().unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(format!(
            "starts, ends, axes and steps must have the same length, got {n}, {}, {}, {}",
            ends.len(),
            axes.len(),
            steps.len()
        ));
    }
    let mut begin = vec![0i64; r];
    let mut step = vec![1i64; r];
    let mut shape = x.to_vec();
    let mut seen = vec![false; r];
    for k in 0..n {
        let a = if axes[k] < 0 { axes[k] + r as i64 } else { axes[k] };
        let ax = usize::try_from(a).ok().filter(|&a| a < r).ok_or_else(|| format!("axis {} is out of range for rank {r}", axes[k]))?;
        if std::mem::replace(&mut seen[ax], true) {
            return Err(format!("axis {} is repeated in {axes:?}", axes[k]));
        }
        let (s, d) = (steps[k], x[ax] as i64);
        if s == 0 {
            return Err(format!("slice step for axis {ax} must not be 0"));
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (lo, hi) = match (d, s > 0) {
            (0, _) => (0, 0),
            (_, true) => (norm(starts[k]).clamp(0, d), norm(ends[k]).clamp(0, d)),
            (_, false) => (norm(starts[k]).clamp(0, d - 1), norm(ends[k]).clamp(-1, d - 1)),
        };
        let (span, s_abs) = if s > 0 { ((hi - lo).max(0), s) } else { ((lo - hi).max(0), s.saturating_neg()) };
        begin[ax] = lo;
        step[ax] = s;
        shape[ax] = (span / s_abs + i64::from(span % s_abs != 0)) as usize;
    }
    let mut stride = 1i64;
    let mut base = 0i64;
    let mut steps_out = vec![0i64; r];
    for d in (0..r).rev() {
        base += begin[d] * stride;
        steps_out[d] = step[d] * stride;
        stride *= x[d] as i64;
    }
    let fits = |v: i64| i32::try_from(v).map(|v| v as u32).map_err(|_| format!("slice of {x:?} is too large for the kernel"));
    let mut p = vec![shape.iter().product::<usize>() as u32, r as u32, fits(base)?];
    p.extend(shape.iter().map(|&d| d.max(1) as u32));
    for s in steps_out {
        p.push(fits(s)?);
    }
    Ok((shape, p))
}

pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>], weight: &dyn Fn(usize) -> Option<Tensor>) -> Option<Launch> {
    let (out, _) = problem(&bounds(step, weight)?, shapes.first()?.as_ref()?).ok()?;
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(out.iter().product(), wg), block: [wg, 1, 1], shared_bytes: 0 })
}

pub struct Slice {
    pipeline: wgpu::ComputePipeline,
    bounds: Bounds,
    wg: u32,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let bounds = bounds(step, cx.weight).ok_or("starts, ends, axes and steps must be constants")?;
    let (p, wg) = super::per_element(cx.gpu, KERNEL, &step.variant, super::precision(step)?, &[("x", "ST")], 0, SOURCE)?;
    Ok(Box::new(Slice { pipeline: p, bounds, wg }))
}

impl GpuKernel for Slice {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("data is missing")?;
        let (out, params) = problem(&self.bounds, &x.shape)?;
        let y = cx.output(&out)?;
        let n = y.len();
        if n > 0 {
            dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &y.buf], groups_1d(n, self.wg))?;
        }
        Ok(y)
    }
}
