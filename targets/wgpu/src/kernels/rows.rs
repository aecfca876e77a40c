//! `wgpu.rows`: `Softmax` and `LayerNormalization` over trailing axes (the steps the CPU
//! target puts on `cpu.rows`), one workgroup per row. Variants: workgroup size.

use super::act::{step_float, step_int};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{GpuTensor, PARAMS_WGSL, dispatch, pipeline, upload};
use kiln_target::Step;

pub const KERNEL: &str = "wgpu.rows";
pub const VARIANTS: &[&str] = &["wg64", "wg128", "wg256", "wg32"];
const SOURCE: &str = include_str!("rows.wgsl");

pub fn covers(step: &Step) -> bool {
    step.domain.is_empty() && matches!(step.op.as_str(), "Softmax" | "LayerNormalization") && step.outputs.iter().filter(|o| o.is_some()).count() == 1
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
    let src = format!("{PARAMS_WGSL}{}", SOURCE.replace("{WG}", &wg.to_string()).replace("{OP}", if softmax { "0" } else { "1" }));
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

impl Rows {
    /// Where a row starts (see the CPU target's `cpu.rows`: the same rules).
    fn row_start(&self, rank: usize) -> Result<usize, String> {
        let a = match (self.softmax, self.opset < 13) {
            (true, true) => self.axis.unwrap_or(1),
            (true, false) => {
                let a = self.axis.unwrap_or(-1);
                if a != -1 && a != rank as i64 - 1 {
                    return Err(format!("softmax over axis {a} of rank {rank} is not a row"));
                }
                a
            }
            (false, _) => self.axis.unwrap_or(-1),
        };
        let a = if a < 0 { a + rank as i64 } else { a };
        usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| format!("axis {a} is outside rank {rank}"))
    }
}

impl GpuKernel for Rows {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("X is missing")?;
        let start = self.row_start(x.shape.len())?;
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
        let y = cx.pool.take(cx.gpu, &x.shape).map_err(|e| e.to_string())?;
        if rows == 0 || l == 0 {
            return Ok(y);
        }
        let gx = rows.min(65535);
        let gy = rows.div_ceil(gx);
        let params = [rows as u32, l as u32, self.eps.to_bits(), bias.is_some() as u32, gx as u32];
        let bias_buf = bias.unwrap_or(&self.dummy);
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&x.buf, &scale.buf, &bias_buf.buf, &y.buf], [gx as u32, gy as u32, 1])?;
        Ok(y)
    }
}
