//! `Concat` of f32 tensors: for every index before the axis, each input's contiguous block
//! is copied in turn (outer indices over threads when the output is large).

use super::{Lowered, dtype_of, step_int};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.concat";

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    let all_f32 = !node.inputs.is_empty() && (0..node.inputs.len()).all(|i| dtype_of(g, node, i) == Some(DType::F32));
    all_f32.then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct ConcatStep {
    axis: i64,
}

impl ConcatStep {
    pub fn load(step: &Step) -> Result<ConcatStep, String> {
        Ok(ConcatStep { axis: step_int(step, "axis").ok_or("attribute 'axis' is required")? })
    }

    /// The output comes from `pool`: the inputs' rows fill every output row.
    pub fn run(&mut self, inputs: &[Option<&Tensor>], pool: &mut crate::exec::Pool) -> Result<Tensor, String> {
        let ins: Vec<&Tensor> = inputs.iter().copied().collect::<Option<_>>().ok_or("an input is missing")?;
        let first = ins.first().ok_or("Concat needs at least one input")?;
        let r = first.rank() as i64;
        let axis = if self.axis < 0 { self.axis + r } else { self.axis };
        if !(0..r).contains(&axis) {
            return Err(format!("axis {} is out of range for rank {r}", self.axis));
        }
        let axis = axis as usize;
        let mut shape = first.shape().to_vec();
        shape[axis] = 0;
        for t in &ins {
            let same = t.rank() == first.rank() && t.shape().iter().zip(first.shape()).enumerate().all(|(i, (a, b))| i == axis || a == b);
            if !same {
                return Err(format!("shapes {:?} and {:?} differ outside axis {axis}", first.shape(), t.shape()));
            }
            shape[axis] += t.shape()[axis];
        }
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let blocks: Vec<(&[f32], usize)> = ins
            .iter()
            .map(|t| t.as_slice::<f32>().map(|s| (s, t.shape()[axis] * inner)).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let row = shape[axis] * inner;
        let mut out = pool.take(outer * row);
        let fill = |(o, dst): (usize, &mut [f32])| {
            let mut at = 0;
            for &(src, len) in &blocks {
                dst[at..at + len].copy_from_slice(&src[o * len..][..len]);
                at += len;
            }
        };
        if row > 0 {
            if out.len() >= 1 << 16 && outer > 1 {
                crate::par::chunks(&mut out, row, crate::par::ALL, |i, c| fill((i, c)));
            } else {
                out.chunks_mut(row).enumerate().for_each(fill);
            }
        }
        Tensor::from_vec(shape, out).map_err(|e| e.to_string())
    }
}
