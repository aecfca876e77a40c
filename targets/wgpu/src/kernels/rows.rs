//! `wgpu.rows`: `Softmax` and `LayerNormalization` over trailing axes (the steps the CPU
//! target puts on `cpu.rows`), one workgroup per row. Variants: workgroup size.

use super::act::{step_float, step_int};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, PARAMS_WGSL, dispatch, pipeline, upload};
use kiln_target::{Launch, Step};

pub const KERNEL: &str = "wgpu.rows";
pub const VARIANTS: &[&str] = &["wg64", "wg128", "wg256", "wg32"];
const SOURCE: &str = include_str!("rows.wgsl");

pub fn covers(step: &Step) -> bool {
    step.domain.is_empty()
        && matches!(step.op.as_str(), "Softmax" | "LayerNormalization")
        && step.outputs.iter().filter(|o| o.is_some()).count() == 1
}

pub struct Rows {
    pipeline: wgpu::ComputePipeline,
    softmax: bool,
    axis: Option<i64>,
    opset: i64,
    eps: f32,
    dummy: GpuTensor,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let softmax = step.op == "Softmax";
    let wg = super::elementwise::workgroup(&step.variant);
    let src = format!(
        "{}{PARAMS_WGSL}{}",
        super::precision(step)?.header(),
        SOURCE.replace("{WG}", &wg.to_string()).replace("{OP}", if softmax { "0" } else { "1" })
    );
    let p = pipeline(cx.gpu, KERNEL, &step.variant, &src).map_err(|e| e.to_string())?;
    Ok(Box::new(Rows {
        pipeline: p,
        softmax,
        axis: step_int(step, "axis"),
        opset: step.opset,
        eps: step_float(step, "epsilon").unwrap_or(1e-5),
        dummy: upload(cx.gpu, &[0.0], &[1]),
    }))
}

/// Where a row starts (see the CPU target's `cpu.rows`: the same rules).
fn row_start(softmax: bool, axis: Option<i64>, opset: i64, rank: usize) -> Result<usize, String> {
    let a = match (softmax, opset < 13) {
        (true, true) => axis.unwrap_or(1),
        (true, false) => {
            let a = axis.unwrap_or(-1);
            if a != -1 && a != rank as i64 - 1 {
                return Err(format!("softmax over axis {a} of rank {rank} is not a row"));
            }
            a
        }
        (false, _) => axis.unwrap_or(-1),
    };
    let a = if a < 0 { a + rank as i64 } else { a };
    usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| format!("axis {a} is outside rank {rank}"))
}

/// Workgroups for `rows` rows (a workgroup each, folded into y past 65535).
pub fn row_groups(rows: usize) -> [u32; 3] {
    let gx = rows.clamp(1, 65535);
    [gx as u32, rows.div_ceil(gx).max(1) as u32, 1]
}

/// The launch geometry of a variant at the step's input shapes.
pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let x = shapes.first()?.as_ref()?;
    let start = row_start(step.op == "Softmax", step_int(step, "axis"), step.opset, x.len()).ok()?;
    let wg = super::elementwise::workgroup(variant);
    Some(Launch { grid: row_groups(x[..start].iter().product()), block: [wg, 1, 1], shared_bytes: wg * 4 })
}

impl GpuKernel for Rows {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("X is missing")?;
        let start = row_start(self.softmax, self.axis, self.opset, x.shape.len())?;
        let l: usize = x.shape[start..].iter().product();
        let rows: usize = x.shape[..start].iter().product();
        let (scale, bias) = if self.softmax {
            (&self.dummy, None)
        } else {
            let s = inputs.get(1).copied().flatten().ok_or("Scale is missing")?;
            if s.len() != l {
                return Err(format!("Scale {:?} does not cover a row of {l}", s.shape));
            }
            let b = inputs.get(2).copied().flatten();
            if b.is_some_and(|b| b.len() != l) {
                return Err("B does not cover a row".into());
            }
            (s, b)
        };
        let y = cx.output(&x.shape)?;
        if rows == 0 || l == 0 {
            return Ok(y);
        }
        let groups = row_groups(rows);
        let params = [rows as u32, l as u32, self.eps.to_bits(), bias.is_some() as u32, groups[0]];
        let bias_buf = bias.unwrap_or(&self.dummy);
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &scale.buf, &bias_buf.buf, &y.buf], groups)?;
        Ok(y)
    }
}
