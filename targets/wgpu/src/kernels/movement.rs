//! Data movement: `wgpu.transpose` (any permutation: each output element gathers from the
//! permuted input strides) and `wgpu.concat` (one copy dispatch per input into its slab of
//! the output): the f32 steps the CPU target puts on `cpu.transpose` / `cpu.concat`.
//! Variants: workgroup size.

use super::act::{step_int, step_ints};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{Float, GpuTensor, dispatch, groups_1d};
use kiln_target::{Launch, Step};

pub const TRANSPOSE: &str = "wgpu.transpose";
pub const CONCAT: &str = "wgpu.concat";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [n, rank, out dims [rank], input strides in output order [rank]]
const TRANSPOSE_WGSL: &str = r#"
    let r = P(1u);
    var rem = i;
    var src = 0u;
    for (var d: i32 = i32(r) - 1; d >= 0; d = d - 1) {
        let dim = P(2u + u32(d));
        src = src + (rem % dim) * P(2u + r + u32(d));
        rem = rem / dim;
    }
    y[i] = x[src];
"#;

// p: [n (this input's elements), inner_in, inner_out, offset]
const CONCAT_WGSL: &str = r#"
    let o = i / P(1u);
    y[o * P(2u) + P(3u) + i % P(1u)] = x[i];
"#;

pub struct Transpose {
    pipeline: wgpu::ComputePipeline,
    perm: Option<Vec<i64>>,
    wg: u32,
}

pub struct Concat {
    pipeline: wgpu::ComputePipeline,
    axis: i64,
    wg: u32,
}

fn build(cx: &KernelCtx, kernel: &str, variant: &str, float: Float, src: &str) -> Result<(wgpu::ComputePipeline, u32), String> {
    super::per_element(cx.gpu, kernel, variant, float, &[("x", "ST")], 0, src)
}

pub fn load_transpose(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let (pipeline, wg) = build(cx, TRANSPOSE, &step.variant, super::precision(step)?, TRANSPOSE_WGSL)?;
    Ok(Box::new(Transpose { pipeline, perm: step_ints(step, "perm"), wg }))
}

pub fn load_concat(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let (pipeline, wg) = build(cx, CONCAT, &step.variant, super::precision(step)?, CONCAT_WGSL)?;
    Ok(Box::new(Concat { pipeline, axis: step_int(step, "axis").ok_or("attribute 'axis' is required")?, wg }))
}

/// The launch geometry of a variant: a thread per output element (concat: one dispatch per
/// input, together covering the output, whose grid this is).
pub fn launch(variant: &str, shapes: &[Option<Vec<usize>>], concat: bool) -> Option<Launch> {
    let n: usize = if concat {
        shapes.iter().map(|s| s.as_ref().map(|s| s.iter().product::<usize>())).sum::<Option<usize>>()?
    } else {
        shapes.first()?.as_ref()?.iter().product()
    };
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(n, wg), block: [wg, 1, 1], shared_bytes: 0 })
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

impl GpuKernel for Transpose {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("X is missing")?;
        let r = x.shape.len();
        let perm: Vec<usize> = match &self.perm {
            None => (0..r).rev().collect(),
            Some(p) => p
                .iter()
                .map(|&a| usize::try_from(a).ok().filter(|&a| a < r))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("perm {p:?} does not fit rank {r}"))?,
        };
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
            return Err(format!("perm {perm:?} is not a permutation of 0..{r}"));
        }
        let out: Vec<usize> = perm.iter().map(|&a| x.shape[a]).collect();
        let n: usize = out.iter().product();
        let st = strides(&x.shape);
        let mut params = vec![n as u32, r.max(1) as u32];
        if r == 0 {
            params.extend([1, 0]);
        } else {
            params.extend(out.iter().map(|&d| d.max(1) as u32));
            params.extend(perm.iter().map(|&a| st[a] as u32));
        }
        let y = cx.output(&out)?;
        if n > 0 {
            dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &y.buf], groups_1d(n, self.wg))?;
        }
        Ok(y)
    }
}

impl GpuKernel for Concat {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let xs: Vec<&GpuTensor> = inputs.iter().flatten().copied().collect();
        let first = xs.first().ok_or("Concat has no inputs")?;
        let r = first.shape.len() as i64;
        let axis = if self.axis < 0 { self.axis + r } else { self.axis };
        let axis = usize::try_from(axis)
            .ok()
            .filter(|&a| (a as i64) < r)
            .ok_or_else(|| format!("axis {} is out of range for rank {r}", self.axis))?;
        let mut out = first.shape.clone();
        out[axis] = 0;
        for x in &xs {
            let same =
                x.shape.len() == first.shape.len() && x.shape.iter().zip(&first.shape).enumerate().all(|(k, (a, b))| k == axis || a == b);
            if !same {
                return Err(format!("input {:?} does not fit {:?} along axis {axis}", x.shape, first.shape));
            }
            out[axis] += x.shape[axis];
        }
        let after: usize = out[axis + 1..].iter().product();
        let inner_out = out[axis] * after;
        let y = cx.output(&out)?;
        let mut offset = 0usize;
        for x in &xs {
            let n = x.len();
            let inner_in = x.shape[axis] * after;
            if n > 0 {
                let params = [n as u32, inner_in as u32, inner_out as u32, offset as u32];
                dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &y.buf], groups_1d(n, self.wg))?;
            }
            offset += inner_in;
        }
        Ok(y)
    }
}
