//! Elementwise unary math: one small kernel per op.

use super::common::{Int, erf, float_unary, int_dispatch, map, num_unary};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Elem, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

fn float_op(inputs: &[Option<&Tensor>], f: fn(f64) -> f64) -> Out {
    Ok(vec![float_unary(req(inputs, 0)?, f)?])
}

pub fn abs(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    Ok(vec![num_unary(req(i, 0)?, f64::abs, i128::abs)?])
}
pub fn neg(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    Ok(vec![num_unary(req(i, 0)?, |x| -x, |x| -x)?])
}
pub fn sign(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let f = |x: f64| if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { x };
    Ok(vec![num_unary(req(i, 0)?, f, i128::signum)?])
}
pub fn sqrt(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::sqrt)
}
pub fn exp(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::exp)
}
pub fn log(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::ln)
}
pub fn reciprocal(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::recip)
}
pub fn ceil(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::ceil)
}
pub fn floor(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::floor)
}
pub fn round(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::round_ties_even)
}
pub fn sin(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::sin)
}
pub fn cos(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::cos)
}
pub fn tan(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::tan)
}
pub fn asin(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::asin)
}
pub fn acos(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::acos)
}
pub fn atan(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::atan)
}
pub fn sinh(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::sinh)
}
pub fn cosh(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::cosh)
}
pub fn asinh(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::asinh)
}
pub fn acosh(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::acosh)
}
pub fn atanh(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::atanh)
}
pub fn tanh(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, f64::tanh)
}
pub fn erf_op(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let x = req(i, 0)?;
    // Erf also takes integer tensors (opset 9+); those compute in f64 and truncate back.
    if x.dtype().is_float() {
        float_op(i, erf)
    } else {
        Ok(vec![int_dispatch!(x.dtype(), T => map::<T, T>(x, |v| T::from_f64(erf(v.to_f64()))))?])
    }
}

pub fn is_nan(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    Ok(vec![float_to_bool(req(i, 0)?, f64::is_nan)?])
}
pub fn is_inf(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let pos = ctx.attr_i("detect_positive", 1) != 0;
    let neg = ctx.attr_i("detect_negative", 1) != 0;
    Ok(vec![float_to_bool(req(i, 0)?, |x| (pos && x == f64::INFINITY) || (neg && x == f64::NEG_INFINITY))?])
}

fn float_to_bool(t: &Tensor, f: impl Fn(f64) -> bool) -> Result<Tensor, OpError> {
    if !t.dtype().is_float() {
        bail!("element type {} is not supported (expects a float type)", t.dtype());
    }
    Ok(Tensor::from_vec(t.shape().to_vec(), t.to_f64_vec()?.into_iter().map(f).collect())?)
}

pub fn not(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let x = req(i, 0)?;
    if x.dtype() != DType::Bool {
        bail!("Not expects a bool tensor, got {}", x.dtype());
    }
    Ok(vec![map::<bool, bool>(x, |v| !v)?])
}
pub fn bitwise_not(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let x = req(i, 0)?;
    Ok(vec![int_dispatch!(x.dtype(), T => map::<T, T>(x, |v| T::from_i128(!v.to_i128())))?])
}
