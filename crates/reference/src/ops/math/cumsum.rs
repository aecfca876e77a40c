//! CumSum along an axis given as a scalar input; `exclusive` and `reverse` attributes.

use super::common::{Int, Lanes, int_dispatch};
use crate::util::{axis, ints, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

pub fn cumsum(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = req(inputs, 0)?;
    let a = match ints(req(inputs, 1)?)?.as_slice() {
        [a] => *a,
        v => bail!("axis must be a single integer, got {v:?}"),
    };
    let lanes = Lanes::new(x.shape(), axis(a, x.rank())?);
    let exclusive = ctx.attr_i("exclusive", 0) != 0;
    let reverse = ctx.attr_i("reverse", 0) != 0;
    if x.dtype().is_float() {
        let xs = x.to_f64_vec()?;
        let y = scan(&lanes, xs.len(), exclusive, reverse, 0.0, |acc, i| acc + xs[i]);
        return Ok(vec![Tensor::new(x.shape().to_vec(), Data::from_f64_vec(x.dtype(), &y)?)?]);
    }
    int_dispatch!(x.dtype(), T => {
        let xs = x.as_slice::<T>()?;
        let y = scan(&lanes, xs.len(), exclusive, reverse, 0i128, |acc, i| acc.wrapping_add(xs[i].to_i128()));
        Ok(vec![Tensor::from_vec(x.shape().to_vec(), y.into_iter().map(T::from_i128).collect())?])
    })
}

/// Running accumulation along each lane, forward or reversed, inclusive or exclusive.
fn scan<A: Copy>(lanes: &Lanes, n: usize, exclusive: bool, reverse: bool, zero: A, add: impl Fn(A, usize) -> A) -> Vec<A> {
    let mut out = vec![zero; n];
    for lane in 0..lanes.count() {
        let mut acc = zero;
        for step in 0..lanes.len {
            let k = if reverse { lanes.len - 1 - step } else { step };
            let i = lanes.index(lane, k);
            if exclusive {
                out[i] = acc;
                acc = add(acc, i);
            } else {
                acc = add(acc, i);
                out[i] = acc;
            }
        }
    }
    out
}
