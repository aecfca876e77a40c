//! Softmax, LogSoftmax and Hardmax. From opset 13 they work along `axis` (default -1);
//! before, the input is coerced to 2-D at `axis` (default 1) and each row is one lane.

use super::common::Lanes;
use crate::util::{axis, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

#[derive(Clone, Copy)]
enum Kind {
    Softmax,
    LogSoftmax,
    Hardmax,
}

fn run(ctx: &OpCtx, inputs: &[Option<&Tensor>], kind: Kind) -> Out {
    let x = req(inputs, 0)?;
    if !x.dtype().is_float() {
        bail!("element type {} is not supported (expects a float type)", x.dtype());
    }
    let lanes = if ctx.opset() >= 13 {
        Lanes::new(x.shape(), axis(ctx.attr_i("axis", -1), x.rank())?)
    } else {
        Lanes::coerced_2d(x.shape(), axis(ctx.attr_i("axis", 1), x.rank())?)
    };
    let xs = x.to_f64_vec()?;
    let mut out = vec![0.0; xs.len()];
    for lane in 0..lanes.count() {
        let max = lanes.indices(lane).map(|i| xs[i]).fold(f64::NEG_INFINITY, f64::max);
        match kind {
            Kind::Softmax | Kind::LogSoftmax => {
                let sum: f64 = lanes.indices(lane).map(|i| (xs[i] - max).exp()).sum();
                for i in lanes.indices(lane) {
                    out[i] = match kind {
                        Kind::Softmax => (xs[i] - max).exp() / sum,
                        _ => xs[i] - max - sum.ln(),
                    };
                }
            }
            Kind::Hardmax => {
                if let Some(i) = lanes.indices(lane).find(|&i| xs[i] == max) {
                    out[i] = 1.0;
                }
            }
        }
    }
    Ok(vec![Tensor::new(x.shape().to_vec(), Data::from_f64_vec(x.dtype(), &out)?)?])
}

pub fn softmax(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    run(ctx, i, Kind::Softmax)
}
pub fn log_softmax(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    run(ctx, i, Kind::LogSoftmax)
}
pub fn hardmax(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    run(ctx, i, Kind::Hardmax)
}
