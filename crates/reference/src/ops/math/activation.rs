//! Activation functions, elementwise (PRelu broadcasts its slope).

use super::common::{erf, float_unary, int_dispatch, map, num_binary, num_unary};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Elem, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

/// An attribute float as f64 (attributes are stored as f32).
fn attr(ctx: &OpCtx, name: &str, default: f32) -> f64 {
    ctx.attr_f(name, default) as f64
}

fn float_op(inputs: &[Option<&Tensor>], f: impl Fn(f64) -> f64) -> Out {
    Ok(vec![float_unary(req(inputs, 0)?, f)?])
}

/// ln(1 + e^x) without overflow for large x.
fn softplus_f(x: f64) -> f64 {
    if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
}

pub fn relu(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    Ok(vec![num_unary(req(i, 0)?, |x| if x < 0.0 { 0.0 } else { x }, |x| x.max(0))?])
}
pub fn leaky_relu(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let a = attr(ctx, "alpha", 0.01);
    float_op(i, move |x| if x < 0.0 { a * x } else { x })
}
pub fn elu(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let a = attr(ctx, "alpha", 1.0);
    float_op(i, move |x| if x < 0.0 { a * x.exp_m1() } else { x })
}
pub fn selu(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let a = attr(ctx, "alpha", 1.673_263_2);
    let g = attr(ctx, "gamma", 1.050_701);
    float_op(i, move |x| if x > 0.0 { g * x } else { g * (a * x.exp() - a) })
}
pub fn celu(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let a = attr(ctx, "alpha", 1.0);
    float_op(i, move |x| x.max(0.0) + (a * (x / a).exp_m1()).min(0.0))
}
pub fn sigmoid(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, |x| 1.0 / (1.0 + (-x).exp()))
}
pub fn hard_sigmoid(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let (a, b) = (attr(ctx, "alpha", 0.2), attr(ctx, "beta", 0.5));
    float_op(i, move |x| (a * x + b).clamp(0.0, 1.0))
}
pub fn hard_swish(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, |x| x * (x / 6.0 + 0.5).clamp(0.0, 1.0))
}
pub fn softplus(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, softplus_f)
}
pub fn softsign(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, |x| x / (1.0 + x.abs()))
}
pub fn mish(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    float_op(i, |x| x * softplus_f(x).tanh())
}
pub fn thresholded_relu(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let a = attr(ctx, "alpha", 1.0);
    float_op(i, move |x| if x > a { x } else { 0.0 })
}
pub fn gelu(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    match ctx.attr_s("approximate", "none") {
        "none" => float_op(i, |x| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))),
        "tanh" => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            float_op(i, move |x| 0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh()))
        }
        a => bail!("attribute 'approximate' must be \"none\" or \"tanh\", got {a:?}"),
    }
}

/// PRelu: `slope` broadcasts to X (unidirectionally). Before opset 7 a 1-D slope holds one
/// value per channel (axis 1), so it is aligned there.
pub fn prelu(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let (x, slope) = (req(i, 0)?, req(i, 1)?);
    let slope = if ctx.opset() < 7 && slope.rank() == 1 && x.rank() > 2 && x.shape()[1] == slope.len() {
        let mut shape = vec![slope.len()];
        shape.resize(x.rank() - 1, 1);
        std::borrow::Cow::Owned(slope.clone().reshape(shape)?)
    } else {
        std::borrow::Cow::Borrowed(slope)
    };
    let y = num_binary(x, &slope, |v, s| if v < 0.0 { s * v } else { v }, |v, s| Ok(if v < 0 { s * v } else { v }))?;
    if y.shape() != x.shape() {
        bail!("slope of shape {:?} does not broadcast to X of shape {:?}", slope.shape(), x.shape());
    }
    Ok(vec![y])
}

/// Shrink: x + bias below -lambd, x - bias above lambd, 0 between. Integers compute in f64.
pub fn shrink(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    let (bias, lambd) = (attr(ctx, "bias", 0.0), attr(ctx, "lambd", 0.5));
    let f = move |x: f64| {
        if x < -lambd {
            x + bias
        } else if x > lambd {
            x - bias
        } else {
            0.0
        }
    };
    let x = req(i, 0)?;
    if x.dtype().is_float() {
        return float_op(i, f);
    }
    Ok(vec![int_dispatch!(x.dtype(), T => map::<T, T>(x, |v| T::from_f64(f(v.to_f64()))))?])
}
