//! The Reduce* family. Axes are an attribute before opset 18 (13 for ReduceSum) and an
//! optional input after, where `noop_with_empty_axes=1` with no axes reduces nothing (each
//! element is its own group, so e.g. ReduceSum returns the input).
//! Floats reduce in f64; integers exactly in i128 (Mean, L2, LogSum and LogSumExp go through
//! f64 and truncate). Empty groups give the reduction's identity (0, 1, -inf, +inf, or NaN for Mean).

use super::common::{Int, ReducePlan, int_dispatch, norm_axes};
use crate::util::{ints, opt, req};
use crate::{OpCtx, OpError};
use kiln_tensor::{DType, Data, Elem, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    SumSquare,
    LogSumExp,
    LogSum,
    L1,
    L2,
}

fn reduce_f64(kind: Kind, v: impl Iterator<Item = f64>) -> f64 {
    let nan_max = |a: f64, b: f64| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) };
    let nan_min = |a: f64, b: f64| if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) };
    match kind {
        Kind::Sum => v.sum(),
        Kind::Mean => {
            let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            s / n as f64
        }
        Kind::Max => v.fold(f64::NEG_INFINITY, nan_max),
        Kind::Min => v.fold(f64::INFINITY, nan_min),
        Kind::Prod => v.product(),
        Kind::SumSquare => v.map(|x| x * x).sum(),
        Kind::LogSumExp => {
            let xs: Vec<f64> = v.collect();
            let m = xs.iter().copied().fold(f64::NEG_INFINITY, nan_max);
            if m.is_infinite() || m.is_nan() {
                // All -inf (or empty), or some +inf / NaN: the plain formula is exact.
                xs.iter().map(|x| x.exp()).sum::<f64>().ln()
            } else {
                m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
            }
        }
        Kind::LogSum => v.sum::<f64>().ln(),
        Kind::L1 => v.map(f64::abs).sum(),
        Kind::L2 => v.map(|x| x * x).sum::<f64>().sqrt(),
    }
}

/// Exact integer reduction, or None where the op goes through f64.
fn reduce_int<T: Int>(kind: Kind, v: impl Iterator<Item = i128>) -> Option<i128> {
    Some(match kind {
        Kind::Sum => v.fold(0, i128::wrapping_add),
        Kind::Prod => v.fold(1, i128::wrapping_mul),
        Kind::Max => v.fold(T::MIN, i128::max),
        Kind::Min => v.fold(T::MAX, i128::min),
        Kind::SumSquare => v.fold(0, |s, x| s.wrapping_add(x.wrapping_mul(x))),
        Kind::L1 => v.fold(0, |s, x| s.wrapping_add(x.abs())),
        Kind::Mean | Kind::LogSumExp | Kind::LogSum | Kind::L2 => return None,
    })
}

fn reduce(ctx: &OpCtx, inputs: &[Option<&Tensor>], kind: Kind) -> Out {
    let x = req(inputs, 0)?;
    let rank = x.rank();
    let keepdims = ctx.attr_i("keepdims", 1) != 0;
    let axes_input_from = if kind == Kind::Sum { 13 } else { 18 };
    let (axes, noop) = if ctx.opset() >= axes_input_from {
        (opt(inputs, 1).map(ints).transpose()?, ctx.attr_i("noop_with_empty_axes", 0) != 0)
    } else {
        (ctx.attr_ints("axes").map(<[i64]>::to_vec), false)
    };
    let axes = match axes {
        Some(a) if !a.is_empty() => norm_axes(&a, rank)?,
        _ if noop => vec![],
        _ => (0..rank).collect(),
    };
    if x.dtype() == DType::Bool {
        // Bool ReduceMax/ReduceMin (opset 20): reduce as 0/1 and convert back.
        let y = reduce_tensor(&x.cast(DType::U8)?, &axes, keepdims, kind)?;
        return Ok(vec![y.cast(DType::Bool)?]);
    }
    Ok(vec![reduce_tensor(x, &axes, keepdims, kind)?])
}

fn reduce_tensor(x: &Tensor, axes: &[usize], keepdims: bool, kind: Kind) -> Result<Tensor, OpError> {
    let plan = ReducePlan::new(x.shape(), axes);
    let shape = if keepdims { plan.kept_shape.clone() } else { plan.dropped_shape.clone() };
    let n = plan.outputs();
    if x.dtype().is_float() {
        let xs = x.to_f64_vec()?;
        let out: Vec<f64> = (0..n).map(|o| reduce_f64(kind, plan.group(o).iter().map(|&i| xs[i]))).collect();
        return Ok(Tensor::new(shape, Data::from_f64_vec(x.dtype(), &out)?)?);
    }
    int_dispatch!(x.dtype(), T => {
        let xs = x.as_slice::<T>()?;
        let out: Vec<T> = (0..n)
            .map(|o| {
                let g = plan.group(o);
                match reduce_int::<T>(kind, g.iter().map(|&i| xs[i].to_i128())) {
                    Some(v) => T::from_i128(v),
                    None => T::from_f64(reduce_f64(kind, g.iter().map(|&i| xs[i].to_f64()))),
                }
            })
            .collect();
        Ok(Tensor::from_vec(shape, out)?)
    })
}

pub fn reduce_sum(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::Sum)
}
pub fn reduce_mean(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::Mean)
}
pub fn reduce_max(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::Max)
}
pub fn reduce_min(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::Min)
}
pub fn reduce_prod(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::Prod)
}
pub fn reduce_sum_square(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::SumSquare)
}
pub fn reduce_log_sum_exp(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::LogSumExp)
}
pub fn reduce_log_sum(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::LogSum)
}
pub fn reduce_l1(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::L1)
}
pub fn reduce_l2(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    reduce(ctx, i, Kind::L2)
}
