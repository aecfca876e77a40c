//! `wgpu.gather`: `Gather` of f32 data by int64 / int32 indices along any axis (the steps the
//! CPU target puts on `cpu.gather`: embedding lookups, mostly), a thread per output element.
//! Constant indices are checked on the host and uploaded at load; indices computed at run
//! time arrive through an upload as int32 (`exec`), and the shader clamps one out of range
//! to the axis (the CPU kernel fails naming it; a shader cannot). Variants: workgroup size.

use super::act::step_int;
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, dispatch, groups_1d, upload};
use kiln_target::{Launch, Step};
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.gather";
pub const VARIANTS: &[&str] = &["wg64", "wg256"];

// p: [n, inner, indices, dim]
const SOURCE: &str = r#"
    let inner = P(1u);
    let k = P(2u);
    let dim = i32(P(3u));
    let j = (i / inner) % k;
    var a = idx[j];
    if (a < 0) { a = a + dim; }
    let at = u32(clamp(a, 0, dim - 1));
    y[i] = x[((i / inner / k) * u32(dim) + at) * inner + i % inner];
"#;

/// Int64 / int32 values as the int32 bits the shaders read (an index beyond int32 is out of
/// range anyway: it saturates).
pub fn index_bits(t: &Tensor) -> Option<Vec<f32>> {
    let v = t.to_i64_vec().ok()?;
    Some(v.iter().map(|&i| f32::from_bits(i.clamp(i32::MIN.into(), i32::MAX.into()) as i32 as u32)).collect())
}

pub fn covers(step: &Step) -> bool {
    step.domain.is_empty() && step.op == "Gather" && step.inputs.len() == 2
}

/// Constant indices: their values (checked per call) and their device copy.
struct Constant {
    values: Vec<i64>,
    shape: Vec<usize>,
    dev: GpuTensor,
}

pub struct Gather {
    pipeline: wgpu::ComputePipeline,
    axis: i64,
    indices: Option<Constant>,
    wg: u32,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let (p, wg) = super::per_element(cx.gpu, KERNEL, &step.variant, super::precision(step)?, &[("x", "ST"), ("idx", "i32")], 0, SOURCE)?;
    let indices = match step.inputs.get(1).copied().flatten().and_then(cx.weight) {
        None => None,
        Some(t) => {
            let values = t.to_i64_vec().map_err(|e| format!("indices: {e}"))?;
            let bits = index_bits(&t).ok_or("indices must be int64 or int32")?;
            Some(Constant { values, shape: t.shape().to_vec(), dev: upload(cx.gpu, &bits, t.shape()) })
        }
    };
    Ok(Box::new(Gather { pipeline: p, axis: step_int(step, "axis").unwrap_or(0), indices, wg }))
}

/// (output shape, inner block, indices, axis length) of a gather.
fn geometry(axis: i64, data: &[usize], indices: &[usize]) -> Result<(Vec<usize>, usize, usize, usize), String> {
    let r = data.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    let a =
        usize::try_from(a).ok().filter(|&a| (a as i64) < r).ok_or_else(|| format!("axis {axis} is out of range for data of rank {r}"))?;
    let mut out = data[..a].to_vec();
    out.extend_from_slice(indices);
    out.extend_from_slice(&data[a + 1..]);
    Ok((out, data[a + 1..].iter().product(), indices.iter().product(), data[a]))
}

pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let (Some(Some(d)), Some(Some(i))) = (shapes.first(), shapes.get(1)) else { return None };
    let (out, ..) = geometry(step_int(step, "axis").unwrap_or(0), d, i).ok()?;
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: groups_1d(out.iter().product(), wg), block: [wg, 1, 1], shared_bytes: 0 })
}

impl GpuKernel for Gather {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("data is missing")?;
        let idx = match (&self.indices, inputs.get(1).copied().flatten()) {
            (Some(c), _) => &c.dev,
            (None, Some(t)) => t,
            (None, None) => return Err("indices are missing".into()),
        };
        let (out, inner, k, dim) = geometry(self.axis, &x.shape, &idx.shape)?;
        if let Some(c) = &self.indices
            && let Some(&bad) = c.values.iter().find(|&&i| i >= dim as i64 || i < -(dim as i64))
        {
            return Err(format!("index {bad} is out of range for an axis of {dim} elements (indices {:?})", c.shape));
        }
        let y = cx.output(&out)?;
        let n = out.iter().product::<usize>();
        if n == 0 {
            return Ok(y);
        }
        if dim == 0 {
            return Err("cannot gather from an empty axis".into());
        }
        let params = [n as u32, inner as u32, k as u32, dim as u32];
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &idx.buf, &y.buf], groups_1d(n, self.wg))?;
        Ok(y)
    }
}
