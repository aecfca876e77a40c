//! ai.onnx.preview.training optimizers, each updating n tensors at once:
//! Momentum (R, T, X..., G..., V...) -> (X_new..., V_new...),
//! Adagrad (R, T, X..., G..., H...) -> (X_new..., H_new...),
//! Adam (R, T, X..., G..., V..., H...) -> (X_new..., V_new..., H_new...).
//! R is the learning rate and T the update count (scalars); G is regularized as
//! G + norm_coefficient * X first.

use super::common::{from_f64, scalar_f64, scalar_i64};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// R, T and the n groups of `groups` same-shape float tensors each (as f64).
struct Args {
    r: f64,
    t: i64,
    /// groups[g][i]: tensor i of group g (X, G, V, H... in input order).
    groups: Vec<Vec<Vec<f64>>>,
    tensors: Vec<Tensor>,
}

fn args(inputs: &[Option<&Tensor>], groups: usize) -> Result<Args, OpError> {
    let r = scalar_f64(req(inputs, 0)?, "R")?;
    let t = scalar_i64(req(inputs, 1)?, "T")?;
    let rest = inputs.len().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(groups) {
        bail!("expected R, T and {groups} groups of n tensors, got {} inputs", inputs.len());
    }
    let n = rest / groups;
    let mut out = Vec::with_capacity(groups);
    let mut tensors = Vec::with_capacity(n);
    for g in 0..groups {
        let mut group = Vec::with_capacity(n);
        for i in 0..n {
            let x = req(inputs, 2 + g * n + i)?;
            let first = req(inputs, 2 + i)?;
            if !x.dtype().is_float() || x.shape() != first.shape() {
                bail!("optimizer tensors must be float and match X's shape {:?}, got {:?}", first.shape(), x.shape());
            }
            group.push(x.to_f64_vec()?);
            if g == 0 {
                tensors.push(x.clone());
            }
        }
        out.push(group);
    }
    Ok(Args { r, t, groups: out, tensors })
}

/// Rebuilds outputs shaped and typed like the matching X tensors, group by group.
fn outputs(a: &Args, results: Vec<Vec<Vec<f64>>>) -> Result<Vec<Tensor>, OpError> {
    let mut out = Vec::new();
    for group in results {
        for (x, v) in a.tensors.iter().zip(group) {
            out.push(from_f64(x.dtype(), x.shape().to_vec(), &v)?);
        }
    }
    Ok(out)
}

pub fn momentum(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let a = args(inputs, 3)?;
    let alpha = ctx.node.attr_float("alpha").ok_or_else(|| OpError::Invalid("attribute 'alpha' is required".into()))? as f64;
    let beta = ctx.node.attr_float("beta").ok_or_else(|| OpError::Invalid("attribute 'beta' is required".into()))? as f64;
    let norm =
        ctx.node.attr_float("norm_coefficient").ok_or_else(|| OpError::Invalid("attribute 'norm_coefficient' is required".into()))? as f64;
    let nesterov = match ctx.attr_s("mode", "") {
        "standard" => false,
        "nesterov" => true,
        other => bail!("attribute 'mode' must be 'standard' or 'nesterov', got '{other}'"),
    };
    // The first update (T == 0) uses beta = 1.
    let beta = if a.t > 0 { beta } else { 1.0 };
    let (mut xs, mut vs) = (Vec::new(), Vec::new());
    for ((x, g), v) in a.groups[0].iter().zip(&a.groups[1]).zip(&a.groups[2]) {
        let (mut x_new, mut v_new) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        for ((&x, &g), &v) in x.iter().zip(g).zip(v) {
            let g = g + norm * x;
            let vn = alpha * v + beta * g;
            x_new.push(if nesterov { x - a.r * (g + alpha * vn) } else { x - a.r * vn });
            v_new.push(vn);
        }
        xs.push(x_new);
        vs.push(v_new);
    }
    outputs(&a, vec![xs, vs])
}

pub fn adagrad(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let a = args(inputs, 3)?;
    let decay = ctx.attr_f("decay_factor", 0.0) as f64;
    let eps = ctx.attr_f("epsilon", 0.0) as f64;
    let norm = ctx.attr_f("norm_coefficient", 0.0) as f64;
    let r = a.r / (1.0 + a.t as f64 * decay);
    let (mut xs, mut hs) = (Vec::new(), Vec::new());
    for ((x, g), h) in a.groups[0].iter().zip(&a.groups[1]).zip(&a.groups[2]) {
        let (mut x_new, mut h_new) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        for ((&x, &g), &h) in x.iter().zip(g).zip(h) {
            let g = g + norm * x;
            let hn = h + g * g;
            x_new.push(x - r * g / (hn.sqrt() + eps));
            h_new.push(hn);
        }
        xs.push(x_new);
        hs.push(h_new);
    }
    outputs(&a, vec![xs, hs])
}

pub fn adam(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let a = args(inputs, 4)?;
    let alpha = ctx.attr_f("alpha", 0.9) as f64;
    let beta = ctx.attr_f("beta", 0.999) as f64;
    // Unlike the other optimizers, the ONNX test data for Adam uses an epsilon of 1e-2 when
    // the attribute is absent (`test_adam_multiple`), so that is the default here.
    let eps = ctx.attr_f("epsilon", 1e-2) as f64;
    let norm = ctx.attr_f("norm_coefficient", 0.0) as f64;
    let norm_post = ctx.attr_f("norm_coefficient_post", 0.0) as f64;
    // Bias correction from the second update on.
    let r = if a.t > 0 {
        let t = a.t as f64;
        a.r * (1.0 - beta.powf(t)).sqrt() / (1.0 - alpha.powf(t))
    } else {
        a.r
    };
    let (mut xs, mut vs, mut hs) = (Vec::new(), Vec::new(), Vec::new());
    for (((x, g), v), h) in a.groups[0].iter().zip(&a.groups[1]).zip(&a.groups[2]).zip(&a.groups[3]) {
        let mut x_new = Vec::with_capacity(x.len());
        let (mut v_new, mut h_new) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        for (((&x, &g), &v), &h) in x.iter().zip(g).zip(v).zip(h) {
            let g = g + norm * x;
            let vn = alpha * v + (1.0 - alpha) * g;
            let hn = beta * h + (1.0 - beta) * g * g;
            x_new.push((1.0 - norm_post) * (x - r * vn / (hn.sqrt() + eps)));
            v_new.push(vn);
            h_new.push(hn);
        }
        xs.push(x_new);
        vs.push(v_new);
        hs.push(h_new);
    }
    outputs(&a, vec![xs, vs, hs])
}
