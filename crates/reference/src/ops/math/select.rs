//! Where (select with three-way broadcasting) and Clip.

use super::common::{Int, int_dispatch, select_data, take};
use crate::util::{broadcast_index, broadcast_shapes, opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

pub fn where_op(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let (c, x, y) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    if c.dtype() != DType::Bool {
        bail!("condition must be bool, got {}", c.dtype());
    }
    let shape = broadcast_shapes(&[c.shape(), x.shape(), y.shape()])?;
    let cv = c.as_slice::<bool>()?;
    let mask: Vec<bool> = broadcast_index(c.shape(), &shape).into_iter().map(|i| cv[i]).collect();
    let xs = take(x.data(), &broadcast_index(x.shape(), &shape))?;
    let ys = take(y.data(), &broadcast_index(y.shape(), &shape))?;
    Ok(vec![Tensor::new(shape, select_data(&mask, &xs, &ys)?)?])
}

/// Clip: bounds are attributes before opset 11 and optional scalar inputs from 11 on.
/// NaN stays NaN; when min > max every value becomes max.
pub fn clip(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = req(inputs, 0)?;
    let (lo, hi) = (opt(inputs, 1), opt(inputs, 2));
    for b in [lo, hi].into_iter().flatten() {
        if b.dtype() != x.dtype() || b.len() != 1 {
            bail!("clip bounds must be single {} values, got {} of shape {:?}", x.dtype(), b.dtype(), b.shape());
        }
    }
    if x.dtype().is_float() {
        let (lo, hi) = if ctx.opset() < 11 {
            (ctx.attr_f("min", f32::NEG_INFINITY) as f64, ctx.attr_f("max", f32::INFINITY) as f64)
        } else {
            let first = |t: Option<&Tensor>, d: f64| -> Result<f64, OpError> {
                Ok(t.map(|t| t.to_f64_vec()).transpose()?.and_then(|v| v.first().copied()).unwrap_or(d))
            };
            (first(lo, f64::NEG_INFINITY)?, first(hi, f64::INFINITY)?)
        };
        let f = move |v: f64| if v.is_nan() { v } else { v.max(lo).min(hi) };
        return Ok(vec![super::common::float_unary(x, f)?]);
    }
    let t = int_dispatch!(x.dtype(), T => {
        let first = |t: Option<&Tensor>| -> Result<Option<i128>, OpError> {
            Ok(match t {
                Some(t) => t.as_slice::<T>()?.first().map(|v| v.to_i128()),
                None => None,
            })
        };
        let (l, h) = (first(lo)?.unwrap_or(i128::MIN), first(hi)?.unwrap_or(i128::MAX));
        let v: Vec<T> = x.as_slice::<T>()?.iter().map(|v| T::from_i128(v.to_i128().max(l).min(h))).collect();
        Tensor::from_vec(x.shape().to_vec(), v)?
    });
    Ok(vec![t])
}
