//! ai.onnx.ml LinearClassifier and LinearRegressor: scores = X · coefficientsᵀ + intercepts
//! over X [N, F] (or [F]), coefficients [C, F].
//!
//! LinearClassifier outputs the label of the best score per row and the scores [N, C] after
//! the post transform. With one coefficient row (C = 1) the label is class 1 when the score is
//! positive, else class 0 (the raw labels 1 / 0 unless there are two class labels); with two
//! class labels the scores widen to [1 - s, s]. As in onnxruntime, a single score takes only
//! the PROBIT transform.
//!
//! LinearRegressor outputs [N, targets]; a single target likewise takes only PROBIT.

use super::common::{Features, Labels, Pick, Post, SecondClass, argmax, f32_matrix, req_floats, widen_binary};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// X · coefᵀ + intercepts, row-major [rows, n_out].
fn scores(x: &Features, coef: &[f64], intercepts: &[f64], n_out: usize, op: &str) -> Result<Vec<f64>, OpError> {
    super::common::out_size(x.rows, n_out)?;
    if coef.len() != n_out * x.cols {
        let implied = if n_out > 0 && coef.len().is_multiple_of(n_out) { format!(" (they are for {} features)", coef.len() / n_out) } else { String::new() };
        bail!("{op}: {} coefficients do not make {n_out} rows of {} features, the width of X{implied}", coef.len(), x.cols);
    }
    if !intercepts.is_empty() && intercepts.len() != n_out {
        bail!("{op}: {} intercepts for {n_out} outputs", intercepts.len());
    }
    let mut out = Vec::with_capacity(x.rows * n_out);
    for r in 0..x.rows {
        let row = x.row(r);
        for c in 0..n_out {
            let w = &coef[c * x.cols..(c + 1) * x.cols];
            let dot: f64 = row.iter().zip(w).map(|(a, b)| a * b).sum();
            out.push(dot + intercepts.get(c).copied().unwrap_or(0.0));
        }
    }
    Ok(out)
}

pub fn linear_classifier(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = Features::of(req(inputs, 0)?, "LinearClassifier")?;
    let coef = req_floats(ctx, "coefficients")?;
    let intercepts = super::common::floats_attr(ctx, "intercepts")?.unwrap_or_default();
    let labels = Labels::of(ctx);
    let post = Post::of(ctx)?;
    let n_out = if intercepts.is_empty() { coef.len().checked_div(x.cols).unwrap_or(0) } else { intercepts.len() };
    if n_out == 0 {
        bail!("LinearClassifier has no classes (no intercepts and no coefficients)");
    }
    let s = scores(&x, &coef, &intercepts, n_out, "LinearClassifier")?;
    let mut picks = Vec::with_capacity(x.rows);
    let (width, out) = if n_out == 1 {
        let two = labels.len() == 2;
        let mut out = Vec::with_capacity(x.rows * 2);
        for &v in &s {
            picks.push(if two { Pick::Class(usize::from(v > 0.0)) } else { Pick::Raw(v > 0.0) });
            if two {
                out.extend(widen_binary(v, post, SecondClass::Complement));
            } else {
                out.push(if post == Post::Probit { super::common::probit(v) } else { v });
            }
        }
        (if two { 2 } else { 1 }, out)
    } else {
        if labels.len() < n_out {
            bail!("LinearClassifier has {n_out} score rows but {} class labels", labels.len());
        }
        let mut out = s;
        for row in out.chunks_mut(n_out) {
            picks.push(Pick::Class(argmax(row).unwrap_or(0)));
            post.apply(row);
        }
        (n_out, out)
    };
    Ok(vec![labels.output(&picks)?, f32_matrix(x.rows, width, &out)?])
}

pub fn linear_regressor(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = Features::of(req(inputs, 0)?, "LinearRegressor")?;
    let coef = req_floats(ctx, "coefficients")?;
    let intercepts = super::common::floats_attr(ctx, "intercepts")?.unwrap_or_default();
    let targets = ctx.attr_i("targets", 1);
    if targets < 1 {
        bail!("attribute 'targets' must be positive, got {targets}");
    }
    let targets = targets as usize;
    let post = Post::of(ctx)?;
    let mut out = scores(&x, &coef, &intercepts, targets, "LinearRegressor")?;
    for row in out.chunks_mut(targets) {
        if targets > 1 {
            post.apply(row);
        } else if post == Post::Probit {
            row[0] = super::common::probit(row[0]);
        }
    }
    Ok(vec![f32_matrix(x.rows, targets, &out)?])
}
