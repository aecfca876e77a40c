//! Normalisations without learned parameters: LpNormalization, MeanVarianceNormalization, LRN.

use super::common::{Lanes, ReducePlan, norm_axes};
use crate::util::{axis, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

fn float_input<'t>(inputs: &[Option<&'t Tensor>]) -> Result<&'t Tensor, OpError> {
    let x = req(inputs, 0)?;
    if !x.dtype().is_float() {
        bail!("element type {} is not supported (expects a float type)", x.dtype());
    }
    Ok(x)
}

fn rebuild(x: &Tensor, y: &[f64]) -> Out {
    Ok(vec![Tensor::new(x.shape().to_vec(), Data::from_f64_vec(x.dtype(), y)?)?])
}

/// LpNormalization: x / ||x||_p along `axis` (p is 1 or 2).
pub fn lp_norm(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = float_input(inputs)?;
    let p = ctx.attr_i("p", 2);
    if p != 1 && p != 2 {
        bail!("attribute 'p' must be 1 or 2, got {p}");
    }
    let lanes = Lanes::new(x.shape(), axis(ctx.attr_i("axis", -1), x.rank())?);
    let xs = x.to_f64_vec()?;
    let mut y = vec![0.0; xs.len()];
    for lane in 0..lanes.count() {
        let norm = if p == 1 {
            lanes.indices(lane).map(|i| xs[i].abs()).sum::<f64>()
        } else {
            lanes.indices(lane).map(|i| xs[i] * xs[i]).sum::<f64>().sqrt()
        };
        for i in lanes.indices(lane) {
            y[i] = xs[i] / norm;
        }
    }
    rebuild(x, &y)
}

/// MeanVarianceNormalization: (x - mean) / (std + 1e-9) over `axes` (default [0, 2, 3]).
pub fn mvn(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = float_input(inputs)?;
    let axes = norm_axes(ctx.attr_ints("axes").unwrap_or(&[0, 2, 3]), x.rank())?;
    let plan = ReducePlan::new(x.shape(), &axes);
    let xs = x.to_f64_vec()?;
    let mut y = vec![0.0; xs.len()];
    for o in 0..plan.outputs() {
        let g = plan.group(o);
        let n = g.len() as f64;
        let mean = g.iter().map(|&i| xs[i]).sum::<f64>() / n;
        let mean_sq = g.iter().map(|&i| xs[i] * xs[i]).sum::<f64>() / n;
        let std = (mean_sq - mean * mean).max(0.0).sqrt();
        for &i in g {
            y[i] = (xs[i] - mean) / (std + 1e-9);
        }
    }
    rebuild(x, &y)
}

/// LRN across channels: x / (bias + alpha / size * sum of squares over the channel window)^beta,
/// the window spanning floor((size-1)/2) channels before and ceil((size-1)/2) after.
pub fn lrn(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = float_input(inputs)?;
    if x.rank() < 2 {
        bail!("X must have rank >= 2, got shape {:?}", x.shape());
    }
    let size = ctx.req_i("size")?;
    if size <= 0 {
        bail!("attribute 'size' must be positive, got {size}");
    }
    let (alpha, beta, bias) = (ctx.attr_f("alpha", 1e-4) as f64, ctx.attr_f("beta", 0.75) as f64, ctx.attr_f("bias", 1.0) as f64);
    let (before, after) = ((size as usize - 1) / 2, (size as usize - 1).div_ceil(2));
    let lanes = Lanes::new(x.shape(), 1);
    let xs = x.to_f64_vec()?;
    let mut y = vec![0.0; xs.len()];
    for lane in 0..lanes.count() {
        for c in 0..lanes.len {
            let lo = c.saturating_sub(before);
            let hi = (c + after).min(lanes.len - 1);
            let sq: f64 = (lo..=hi).map(|k| xs[lanes.index(lane, k)].powi(2)).sum();
            let i = lanes.index(lane, c);
            y[i] = xs[i] / (bias + alpha / size as f64 * sq).powf(beta);
        }
    }
    rebuild(x, &y)
}
