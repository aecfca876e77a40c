//! ArgMax and ArgMin along one axis (keepdims, select_last_index); output is i64.
//! NaN wins over any number, as in numpy.

use super::common::{Int, Lanes, int_dispatch};
use crate::util::{axis, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

type Out = Result<Vec<Tensor>, OpError>;

fn arg(ctx: &OpCtx, inputs: &[Option<&Tensor>], want_max: bool) -> Out {
    let x = req(inputs, 0)?;
    let ax = axis(ctx.attr_i("axis", 0), x.rank())?;
    let keepdims = ctx.attr_i("keepdims", 1) != 0;
    let last = ctx.attr_i("select_last_index", 0) != 0;
    let lanes = Lanes::new(x.shape(), ax);
    if lanes.len == 0 && lanes.count() > 0 {
        bail!("cannot take the arg{} of an empty axis {ax}", if want_max { "max" } else { "min" });
    }
    let out: Vec<i64> = if x.dtype().is_float() {
        let v = x.to_f64_vec()?;
        best(&lanes, |i| v[i], f64::is_nan, want_max, last)
    } else {
        int_dispatch!(x.dtype(), T => {
            let s = x.as_slice::<T>()?;
            best(&lanes, |i| s[i].to_i128(), |_| false, want_max, last)
        })
    };
    let mut shape = x.shape().to_vec();
    if keepdims {
        if let Some(d) = shape.get_mut(ax) {
            *d = 1;
        }
    } else if ax < shape.len() {
        shape.remove(ax);
    }
    Ok(vec![Tensor::from_vec(shape, out)?])
}

/// Per lane, the position of the best value (ties: first, or last with `last`).
fn best<V: PartialOrd + Copy>(lanes: &Lanes, get: impl Fn(usize) -> V, is_nan: impl Fn(V) -> bool, want_max: bool, last: bool) -> Vec<i64> {
    (0..lanes.count())
        .map(|lane| {
            let mut best_k = 0;
            let mut best_v = get(lanes.index(lane, 0));
            for k in 1..lanes.len {
                let v = get(lanes.index(lane, k));
                let better = if is_nan(best_v) {
                    last && is_nan(v)
                } else if is_nan(v) {
                    true
                } else if last {
                    if want_max { v >= best_v } else { v <= best_v }
                } else if want_max {
                    v > best_v
                } else {
                    v < best_v
                };
                if better {
                    best_k = k;
                    best_v = v;
                }
            }
            best_k as i64
        })
        .collect()
}

pub fn arg_max(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    arg(ctx, i, true)
}
pub fn arg_min(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    arg(ctx, i, false)
}
