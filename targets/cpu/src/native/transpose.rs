//! `Transpose` of f32 tensors: the output is written in order, the innermost output axis
//! copied as a run when it is also innermost in the input (the common head split/merge of
//! transformers) and gathered with a stride otherwise; outer rows split over threads.

use super::{Lowered, dtype_of, step_ints};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.transpose";

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    (dtype_of(g, node, 0) == Some(DType::F32)).then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct TransposeStep {
    perm: Option<Vec<i64>>,
}

impl TransposeStep {
    pub fn load(step: &Step) -> TransposeStep {
        TransposeStep { perm: step_ints(step, "perm") }
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input is missing")?;
        let r = x.rank();
        let perm: Vec<usize> = match &self.perm {
            None => (0..r).rev().collect(),
            Some(p) => p.iter().map(|&a| usize::try_from(a).ok().filter(|&a| a < r)).collect::<Option<_>>().ok_or_else(|| format!("perm {p:?} does not fit rank {r}"))?,
        };
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
            return Err(format!("perm {perm:?} is not a permutation of 0..{r}"));
        }
        let shape: Vec<usize> = perm.iter().map(|&a| x.shape()[a]).collect();
        let data = transpose(x.as_slice::<f32>().map_err(|e| e.to_string())?, x.shape(), &perm);
        Tensor::from_vec(shape, data).map_err(|e| e.to_string())
    }
}

/// `x` of shape `dims` with its axes permuted (`out` axis i is input axis `perm[i]`).
pub fn transpose(x: &[f32], dims: &[usize], perm: &[usize]) -> Vec<f32> {
    let r = dims.len();
    let total: usize = dims.iter().product();
    let mut out = vec![0f32; total];
    if total == 0 || r == 0 {
        out.copy_from_slice(&x[..total]);
        return out;
    }
    let mut in_strides = vec![1usize; r];
    for i in (0..r - 1).rev() {
        in_strides[i] = in_strides[i + 1] * dims[i + 1];
    }
    let shape: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
    let strides: Vec<usize> = perm.iter().map(|&a| in_strides[a]).collect();
    let inner = shape[r - 1];
    let inner_stride = strides[r - 1];
    let row = |o: usize, dst: &mut [f32]| {
        // Source offset of output row `o` (all axes but the last).
        let (mut rem, mut base) = (o, 0usize);
        for i in (0..r - 1).rev() {
            base += (rem % shape[i]) * strides[i];
            rem /= shape[i];
        }
        if inner_stride == 1 {
            dst.copy_from_slice(&x[base..base + inner]);
        } else {
            dst.iter_mut().enumerate().for_each(|(j, d)| *d = x[base + j * inner_stride]);
        }
    };
    if total >= 1 << 16 {
        crate::par::chunks(&mut out, inner, crate::par::ALL, row);
    } else {
        out.chunks_mut(inner).enumerate().for_each(|(o, dst)| row(o, dst));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_index_rule() {
        let dims = [2, 3, 4, 5];
        let x: Vec<f32> = (0..120).map(|v| v as f32).collect();
        for perm in [[0, 2, 1, 3], [3, 2, 1, 0], [0, 1, 3, 2], [1, 0, 2, 3]] {
            let got = transpose(&x, &dims, &perm);
            let shape: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
            let mut i = 0;
            for a in 0..shape[0] {
                for b in 0..shape[1] {
                    for c in 0..shape[2] {
                        for d in 0..shape[3] {
                            let mut src = [0usize; 4];
                            for (k, v) in [a, b, c, d].into_iter().enumerate() {
                                src[perm[k]] = v;
                            }
                            let flat = ((src[0] * 3 + src[1]) * 4 + src[2]) * 5 + src[3];
                            assert_eq!(got[i], x[flat], "perm {perm:?} at {i}");
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}
