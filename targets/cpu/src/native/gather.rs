//! `Gather` of f32 data by i64 / i32 indices along any axis (embedding lookups, mostly): for
//! every index before the axis and every index given, one contiguous block of the data is
//! copied. Negative indices count from the end; one out of range is an error naming it.

use super::{Lowered, dtype_of, step_int};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Data, Tensor};

pub const KERNEL: &str = "cpu.gather";

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    let ok = dtype_of(g, node, 0) == Some(DType::F32) && matches!(dtype_of(g, node, 1), Some(DType::I64 | DType::I32));
    ok.then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct GatherStep {
    axis: i64,
}

impl GatherStep {
    pub fn load(step: &Step) -> GatherStep {
        GatherStep { axis: step_int(step, "axis").unwrap_or(0) }
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
        let (Some(data), Some(indices)) = (inputs.first().copied().flatten(), inputs.get(1).copied().flatten()) else {
            return Err("Gather needs data and indices".into());
        };
        let r = data.rank() as i64;
        let axis = if self.axis < 0 { self.axis + r } else { self.axis };
        if !(0..r).contains(&axis) {
            return Err(format!("axis {} is out of range for data of rank {r}", self.axis));
        }
        let axis = axis as usize;
        let dim = data.shape()[axis];
        let idx: Vec<usize> = match indices.data() {
            Data::I64(v) => v.iter().map(|&i| resolve(i, dim)).collect::<Result<_, _>>()?,
            Data::I32(v) => v.iter().map(|&i| resolve(i64::from(i), dim)).collect::<Result<_, _>>()?,
            other => return Err(format!("indices must be int64 or int32, got {}", other.dtype())),
        };
        let src = data.as_slice::<f32>().map_err(|e| e.to_string())?;
        let outer: usize = data.shape()[..axis].iter().product();
        let inner: usize = data.shape()[axis + 1..].iter().product();
        let mut out = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            let base = o * dim * inner;
            for &i in &idx {
                out.extend_from_slice(&src[base + i * inner..][..inner]);
            }
        }
        let mut shape = data.shape()[..axis].to_vec();
        shape.extend_from_slice(indices.shape());
        shape.extend_from_slice(&data.shape()[axis + 1..]);
        Tensor::from_vec(shape, out).map_err(|e| e.to_string())
    }
}

/// An index into an axis of `dim` elements (negative from the end), or the error naming it.
fn resolve(i: i64, dim: usize) -> Result<usize, String> {
    let n = dim as i64;
    let j = if i < 0 { i + n } else { i };
    if (0..n).contains(&j) { Ok(j as usize) } else { Err(format!("index {i} is out of range for an axis of {dim} elements")) }
}

#[cfg(test)]
mod tests {
    use super::GatherStep;
    use kiln_tensor::Tensor;

    #[test]
    fn rows_by_index_negative_from_the_end_and_out_of_range_named() {
        let data = Tensor::from_vec(vec![3, 2], vec![0f32, 1., 2., 3., 4., 5.]).expect("data");
        let idx = Tensor::from_vec(vec![2, 2], vec![2i64, -3, 1, -1]).expect("idx");
        let mut g = GatherStep { axis: 0 };
        let out = g.run(&[Some(&data), Some(&idx)]).expect("gather");
        assert_eq!(out.shape(), &[2, 2, 2]);
        assert_eq!(out.as_slice::<f32>().expect("f32"), &[4., 5., 0., 1., 2., 3., 4., 5.]);
        let bad = Tensor::from_vec(vec![1], vec![3i32]).expect("idx");
        let err = g.run(&[Some(&data), Some(&bad)]).err().unwrap_or_default();
        assert_eq!(err, "index 3 is out of range for an axis of 3 elements");
        assert!(GatherStep { axis: 2 }.run(&[Some(&data), Some(&idx)]).is_err());
    }
}
