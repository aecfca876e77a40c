//! NonZero and Compress.

use super::common::{axis, gather_flat};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

/// Whether each element is non-zero (true; non-empty for strings).
fn truthy(t: &Tensor) -> Result<Vec<bool>, OpError> {
    Ok(match t.data() {
        Data::String(v) => v.iter().map(|s| !s.is_empty()).collect(),
        d => d.to_f64_vec().unwrap_or_default().iter().map(|&v| v != 0.0).collect(),
    })
}

/// NonZero: the indices of the non-zero elements, shape `(rank, count)`, row-major order.
pub fn non_zero(_ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let nz: Vec<usize> = truthy(x)?.iter().enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect();
    let rank = x.rank();
    let mut out = vec![0i64; rank * nz.len()];
    for (c, &f) in nz.iter().enumerate() {
        let mut rem = f;
        for a in (0..rank).rev() {
            out[a * nz.len() + c] = (rem % x.shape()[a]) as i64;
            rem /= x.shape()[a];
        }
    }
    Ok(vec![Tensor::from_vec(vec![rank, nz.len()], out)?])
}

/// Compress: the slices along `axis` (or the flattened elements, without one) whose
/// `condition` entry is true; a shorter condition leaves the rest out.
pub fn compress(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let cond = truthy(req(inputs, 1)?)?;
    let (outer, dim, inner, ax) = match ctx.node.attr_int("axis") {
        Some(a) => {
            let ax = axis(a, x.rank())?;
            (x.shape()[..ax].iter().product(), x.shape()[ax], x.shape()[ax + 1..].iter().product(), Some(ax))
        }
        None => (1, x.len(), 1, None),
    };
    if cond.iter().skip(dim).any(|&c| c) {
        bail!("condition has a true entry beyond the {dim} entries of the axis");
    }
    let keep: Vec<usize> = cond.iter().take(dim).enumerate().filter(|(_, c)| **c).map(|(i, _)| i).collect();
    let mut idx = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in &keep {
            let base = (o * dim + k) * inner;
            idx.extend(base..base + inner);
        }
    }
    let shape = match ax {
        Some(ax) => {
            let mut s = x.shape().to_vec();
            s[ax] = keep.len();
            s
        }
        None => vec![keep.len()],
    };
    gather_flat(x, shape, &idx).map(|t| vec![t])
}
