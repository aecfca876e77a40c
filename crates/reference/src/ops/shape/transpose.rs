//! Transpose.

use super::common::{flat, gather_flat, index_map};
use crate::util::{req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Transpose: output axis `k` is input axis `perm[k]` (default: reversed axes).
pub fn transpose(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let rank = x.rank();
    let perm: Vec<usize> = match ctx.attr_ints("perm") {
        Some(p) => {
            let mut seen = vec![false; rank];
            let mut out = Vec::with_capacity(rank);
            for &a in p {
                match usize::try_from(a).ok().filter(|&a| a < rank && !seen[a]) {
                    Some(a) => {
                        seen[a] = true;
                        out.push(a);
                    }
                    None => bail!("attribute 'perm' must be a permutation of 0..{rank}, got {p:?}"),
                }
            }
            if out.len() != rank {
                bail!("attribute 'perm' must be a permutation of 0..{rank}, got {p:?}");
            }
            out
        }
        None => (0..rank).rev().collect(),
    };
    Ok(vec![permute(x, &perm)?])
}

/// `x` with its axes reordered: output axis `k` is input axis `perm[k]` (`perm` checked).
pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor, OpError> {
    let in_strides = strides(x.shape());
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let src_strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let idx = index_map(&shape, |o| flat(o, &src_strides));
    gather_flat(x, shape, &idx)
}
