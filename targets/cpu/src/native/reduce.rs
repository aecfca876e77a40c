//! `ReduceMean` / `ReduceSum` / `ReduceMax` / `ReduceMin` / `ReduceL1` / `ReduceL2` /
//! `ReduceSumSquare` of f32 over a run of adjacent axes (the input viewed as
//! `[outer, mid, inner]`, reduced over `mid`): global pools in either layout, sentence mean
//! pooling, the moments of a normalisation, an embedding's L2 norm.

use super::{Lowered, constant, dtype_of, step_int, step_ints};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.reduce";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Mean,
    Sum,
    Max,
    Min,
    L1,
    L2,
    SumSquare,
}

fn op_of(name: &str) -> Option<Op> {
    match name {
        "ReduceMean" => Some(Op::Mean),
        "ReduceSum" => Some(Op::Sum),
        "ReduceMax" => Some(Op::Max),
        "ReduceMin" => Some(Op::Min),
        "ReduceL1" => Some(Op::L1),
        "ReduceL2" => Some(Op::L2),
        "ReduceSumSquare" => Some(Op::SumSquare),
        _ => None,
    }
}

pub fn covers(node: &Node) -> bool {
    node.domain.is_empty() && op_of(&node.op_type).is_some()
}

/// Axes from the attribute (older opsets) or a constant input 1 (ReduceSum 13+, the others 18+).
pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    if dtype_of(g, node, 0) != Some(DType::F32) {
        return None;
    }
    let axes: Vec<i64> = match (node.attr_ints("axes"), node.inputs.get(1).copied().flatten()) {
        (Some(a), _) => a.to_vec(),
        (None, None) => Vec::new(),
        (None, Some(_)) => constant(g, node, 1, DType::I64)?.to_i64_vec().ok()?,
    };
    // The axes must form one run (known now, so a step never fails on it at run time).
    let rank = node.inputs.first().copied().flatten().and_then(|v| g.value(v).shape.as_ref()).map(|s| s.0.len())? as i64;
    let mut norm: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + rank } else { a }).collect();
    norm.sort_unstable();
    norm.dedup();
    let adjacent = norm.windows(2).all(|w| w[1] == w[0] + 1) && norm.iter().all(|&a| (0..rank).contains(&a));
    adjacent.then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct ReduceStep {
    op: Op,
    axes_attr: Option<Vec<i64>>,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

impl ReduceStep {
    pub fn load(step: &Step) -> Result<ReduceStep, String> {
        let op = op_of(&step.op).ok_or_else(|| format!("{} is not a reduction this kernel runs", step.op))?;
        Ok(ReduceStep {
            op,
            axes_attr: step_ints(step, "axes"),
            keepdims: step_int(step, "keepdims").unwrap_or(1) != 0,
            noop_with_empty_axes: step_int(step, "noop_with_empty_axes").unwrap_or(0) != 0,
        })
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input is missing")?;
        let r = x.rank();
        let axes: Vec<i64> = match (&self.axes_attr, inputs.get(1).copied().flatten()) {
            (Some(a), _) => a.clone(),
            (None, Some(t)) => t.to_i64_vec().map_err(|e| e.to_string())?,
            (None, None) => Vec::new(),
        };
        if axes.is_empty() && self.noop_with_empty_axes {
            return Ok(x.clone());
        }
        let mut axes: Vec<usize> = if axes.is_empty() {
            (0..r).collect()
        } else {
            axes.iter()
                .map(|&a| {
                    let v = if a < 0 { a + r as i64 } else { a };
                    usize::try_from(v).ok().filter(|&v| v < r).ok_or_else(|| format!("axis {a} is out of range for rank {r}"))
                })
                .collect::<Result<_, _>>()?
        };
        axes.sort_unstable();
        axes.dedup();
        let (Some(&lo), Some(&hi)) = (axes.first(), axes.last()) else { return Ok(x.clone()) };
        if hi - lo + 1 != axes.len() {
            return Err(format!("axes {axes:?} are not adjacent; this kernel reduces one run of axes"));
        }
        let dims = x.shape();
        let outer: usize = dims[..lo].iter().product();
        let mid: usize = dims[lo..=hi].iter().product();
        let inner: usize = dims[hi + 1..].iter().product();
        let src = x.as_slice::<f32>().map_err(|e| e.to_string())?;
        if mid == 0 && matches!(self.op, Op::Max | Op::Min) {
            return Err("cannot take the max or min of an empty set".into());
        }
        let op = self.op;
        let one = |(o, dst): (usize, &mut [f32])| {
            let block = &src[o * mid * inner..][..mid * inner];
            let init = match op {
                Op::Mean | Op::Sum | Op::L1 | Op::L2 | Op::SumSquare => 0.0,
                Op::Max => f32::NEG_INFINITY,
                Op::Min => f32::INFINITY,
            };
            dst.fill(init);
            for row in block.chunks_exact(inner.max(1)) {
                for (d, &v) in dst.iter_mut().zip(row) {
                    *d = match op {
                        Op::Mean | Op::Sum => *d + v,
                        Op::L1 => *d + v.abs(),
                        Op::L2 | Op::SumSquare => *d + v * v,
                        Op::Max => {
                            if v.is_nan() || v > *d {
                                v
                            } else {
                                *d
                            }
                        }
                        Op::Min => {
                            if v.is_nan() || v < *d {
                                v
                            } else {
                                *d
                            }
                        }
                    };
                }
            }
            if op == Op::Mean {
                let k = 1.0 / mid as f32;
                dst.iter_mut().for_each(|d| *d *= k);
            } else if op == Op::L2 {
                dst.iter_mut().for_each(|d| *d = d.sqrt());
            }
        };
        let mut out = vec![0f32; outer * inner];
        if inner > 0 {
            if src.len() >= 1 << 16 && outer > 1 {
                crate::par::chunks(&mut out, inner, crate::par::ALL, |i, c| one((i, c)));
            } else {
                out.chunks_mut(inner).enumerate().for_each(one);
            }
        }
        let shape: Vec<usize> = dims
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| match (axes.contains(&i), self.keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        Tensor::from_vec(shape, out).map_err(|e| e.to_string())
    }
}
