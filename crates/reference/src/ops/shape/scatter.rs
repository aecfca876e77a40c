//! ScatterElements (and its deprecated alias Scatter) and ScatterND, with reductions.

use super::common::{axis, concat, for_each_index, take, wrap_index};
use super::gather::NdPlan;
use crate::util::{ints, req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Elem, Tensor, with_elem};
use std::cmp::Ordering;

/// ScatterElements / Scatter: `out[i with axis coordinate indices[i]] = updates[i]`, or combined
/// with `reduction` (add, mul, max, min).
pub fn scatter_elements(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, ind, upd) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    if ind.shape() != upd.shape() || ind.rank() != x.rank() || x.rank() == 0 {
        bail!("indices {:?} and updates {:?} must have one shape, of the data's rank ({:?})", ind.shape(), upd.shape(), x.shape());
    }
    if let Some(a) = (0..x.rank()).find(|&a| ind.shape()[a] > x.shape()[a]) {
        bail!("indices {:?} exceed the data {:?} on axis {a}", ind.shape(), x.shape());
    }
    let ax = axis(ctx.attr_i("axis", 0), x.rank())?;
    let st = strides(x.shape());
    let iv = ints(ind)?;
    let mut pairs = Vec::with_capacity(iv.len());
    let mut bad = None;
    for_each_index(ind.shape(), |o| {
        let k = pairs.len();
        let mut dst = 0;
        for (a, &i) in o.iter().enumerate() {
            let c = if a == ax {
                wrap_index(iv[k], x.shape()[a]).unwrap_or_else(|e| {
                    bad.get_or_insert(e);
                    0
                })
            } else {
                i
            };
            dst += c * st[a];
        }
        pairs.push((dst, k));
    });
    if let Some(e) = bad {
        return Err(e);
    }
    Ok(vec![apply(x, upd, &pairs, ctx.attr_s("reduction", "none"))?])
}

/// ScatterND: each innermost row of `indices` addresses a slice of the data, replaced by
/// (or combined with) the matching slice of `updates`.
pub fn scatter_nd(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, ind, upd) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    let plan = NdPlan::new(x.shape(), ind.shape(), 0)?;
    let want = [&ind.shape()[..ind.rank() - 1], &x.shape()[plan.m..]].concat();
    if upd.shape() != want.as_slice() {
        bail!("updates must have shape {want:?}, got {:?}", upd.shape());
    }
    let iv = ints(ind)?;
    let mut pairs = Vec::with_capacity(upd.len());
    for p in 0..plan.count {
        let base = plan.offset(p, &iv[p * plan.m..(p + 1) * plan.m], x.shape())?;
        pairs.extend((0..plan.inner).map(|j| (base + j, p * plan.inner + j)));
    }
    Ok(vec![apply(x, upd, &pairs, ctx.attr_s("reduction", "none"))?])
}

/// Copies `x` and writes `updates[src]` into each `dst` of `pairs`, in order.
fn apply(x: &Tensor, updates: &Tensor, pairs: &[(usize, usize)], reduction: &str) -> Result<Tensor, OpError> {
    if x.dtype() != updates.dtype() {
        bail!("updates are {} but the data is {}", updates.dtype(), x.dtype());
    }
    if reduction == "none" {
        let n = x.len();
        let mut idx: Vec<usize> = (0..n).collect();
        for &(d, s) in pairs {
            idx[d] = n + s;
        }
        let all = concat(&[x.data(), updates.data()])?;
        return Ok(Tensor::new(x.shape().to_vec(), take(&all, &idx)?)?);
    }
    let op = match reduction {
        "add" => Reduce::Add,
        "mul" => Reduce::Mul,
        "max" => Reduce::Max,
        "min" => Reduce::Min,
        r => bail!("attribute 'reduction' must be none, add, mul, max or min, got '{r}'"),
    };
    let mut out = x.clone();
    fn run<T: Elem>(out: &mut [T], upd: &[T], pairs: &[(usize, usize)], op: Reduce) {
        for &(d, s) in pairs {
            out[d] = op.combine(out[d], upd[s]);
        }
    }
    let upd = updates.data();
    with_elem!(out.data_mut(), v => run(v, Elem::slice(upd).unwrap_or(&[]), pairs, op), o => bail!("reduction '{reduction}' needs numbers, got {}", o.dtype()));
    Ok(out)
}

#[derive(Clone, Copy)]
enum Reduce {
    Add,
    Mul,
    Max,
    Min,
}

impl Reduce {
    /// Floats combine in f64, integers exactly with wrapping (bools: add is or, mul is and).
    fn combine<T: Elem>(self, a: T, b: T) -> T {
        let float = T::DTYPE.is_float();
        match self {
            Reduce::Add if float => T::from_f64(a.to_f64() + b.to_f64()),
            Reduce::Add => T::from_i64(a.to_i64().wrapping_add(b.to_i64())),
            Reduce::Mul if float => T::from_f64(a.to_f64() * b.to_f64()),
            Reduce::Mul => T::from_i64(a.to_i64().wrapping_mul(b.to_i64())),
            Reduce::Max => {
                if b.partial_cmp(&a) == Some(Ordering::Greater) {
                    b
                } else {
                    a
                }
            }
            Reduce::Min => {
                if b.partial_cmp(&a) == Some(Ordering::Less) {
                    b
                } else {
                    a
                }
            }
        }
    }
}
