//! NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (which is NLL of log-softmax).

use super::common::{floats, from_f64};
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Tensor};

/// NLL over `logp` of shape (N, C, d...) with `target` (N, d...): the reduced loss data and shape.
fn nll(ctx: &OpCtx, logp: &[f64], shape: &[usize], target: &Tensor, weight: Option<&Tensor>) -> Result<(Vec<f64>, Vec<usize>), OpError> {
    if shape.len() < 2 {
        bail!("the input must have rank >= 2 (N, C, ...), got {shape:?}");
    }
    let (n, c) = (shape[0], shape[1]);
    let mut tshape = vec![n];
    tshape.extend(&shape[2..]);
    if target.shape() != tshape.as_slice() || !target.dtype().is_int() {
        bail!("target must be an integer tensor of shape {tshape:?}, got {} {:?}", target.dtype(), target.shape());
    }
    let t = target.to_i64_vec()?;
    let w = match weight {
        Some(w) if w.shape() == [c] => floats(w, "weight")?,
        Some(w) => bail!("weight must have shape [{c}], got {:?}", w.shape()),
        None => vec![1.0; c],
    };
    let ignore = ctx.node.attr_int("ignore_index");
    let inner: usize = shape[2..].iter().product();
    let mut loss = Vec::with_capacity(t.len());
    let mut wsum = 0.0;
    for (i, &cls) in t.iter().enumerate() {
        if Some(cls) == ignore {
            loss.push(0.0);
            continue;
        }
        if cls < 0 || cls as usize >= c {
            bail!("target class {cls} is out of range for {c} classes");
        }
        let (b, d) = (i / inner.max(1), i % inner.max(1));
        let wc = w[cls as usize];
        loss.push(-logp[(b * c + cls as usize) * inner + d] * wc);
        wsum += wc;
    }
    Ok(match ctx.attr_s("reduction", "mean") {
        "none" => (loss, tshape),
        "sum" => (vec![loss.iter().sum()], vec![]),
        "mean" => (vec![loss.iter().sum::<f64>() / wsum], vec![]),
        other => bail!("attribute 'reduction' must be none, sum or mean, got '{other}'"),
    })
}

fn float_dtype(t: &Tensor) -> Result<DType, OpError> {
    if !t.dtype().is_float() {
        bail!("expected a float input, got {}", t.dtype());
    }
    Ok(t.dtype())
}

pub fn nll_loss(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let dt = float_dtype(x)?;
    let (loss, shape) = nll(ctx, &floats(x, "input")?, x.shape(), req(inputs, 1)?, opt(inputs, 2))?;
    Ok(vec![from_f64(dt, shape, &loss)?])
}

pub fn softmax_cross_entropy_loss(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let dt = float_dtype(x)?;
    let shape = x.shape();
    if shape.len() < 2 {
        bail!("scores must have rank >= 2 (N, C, ...), got {shape:?}");
    }
    let xv = floats(x, "scores")?;
    let (n, c) = (shape[0], shape[1]);
    let inner: usize = shape[2..].iter().product();
    // Log-softmax over the class axis.
    let mut logp = vec![0.0; xv.len()];
    for b in 0..n {
        for d in 0..inner {
            let at = |k: usize| (b * c + k) * inner + d;
            let max = (0..c).map(|k| xv[at(k)]).fold(f64::NEG_INFINITY, f64::max);
            let lse = max + (0..c).map(|k| (xv[at(k)] - max).exp()).sum::<f64>().ln();
            for k in 0..c {
                logp[at(k)] = xv[at(k)] - lse;
            }
        }
    }
    let (loss, lshape) = nll(ctx, &logp, shape, req(inputs, 1)?, opt(inputs, 2))?;
    Ok(vec![from_f64(dt, lshape, &loss)?, from_f64(dt, shape.to_vec(), &logp)?])
}
