//! `wgpu.shape`: `Shape` (and `Size`) of a value that lives on the adapter. The answer is
//! the device tensor's shape, known on the host, so the executor writes the int64 result
//! straight to the host (no dispatch, no readback of the data: without this every `Shape`
//! of a device value read the whole tensor back). `lower` uses it only where the input is on
//! the device alone; on a host value the CPU plan's step stays.

use super::act::step_int;
use kiln_target::Step;
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.shape";
pub const VARIANTS: &[&str] = &["host"];

pub fn covers(step: &Step) -> bool {
    step.domain.is_empty() && matches!(step.op.as_str(), "Shape" | "Size") && step.inputs.len() == 1 && step.outputs.len() == 1
}

/// A loaded `wgpu.shape` step: what to report of a shape.
pub struct ShapeOf {
    size: bool,
    start: i64,
    end: Option<i64>,
}

impl ShapeOf {
    pub fn load(step: &Step) -> ShapeOf {
        ShapeOf { size: step.op == "Size", start: step_int(step, "start").unwrap_or(0), end: step_int(step, "end") }
    }

    /// The result for a value of shape `dims` (the reference executor's clamping).
    pub fn run(&self, dims: &[usize]) -> Result<Tensor, String> {
        if self.size {
            return Ok(Tensor::scalar(dims.iter().product::<usize>() as i64));
        }
        let r = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (start, end) = (clamp(self.start), clamp(self.end.unwrap_or(r)));
        let v: Vec<i64> = dims.iter().skip(start).take(end.saturating_sub(start)).map(|&d| d as i64).collect();
        Tensor::from_vec(vec![v.len()], v).map_err(|e| e.to_string())
    }
}
