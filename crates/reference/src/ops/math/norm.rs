//! Normalisations with per-channel parameters: BatchNormalization, InstanceNormalization,
//! GroupNormalization and LayerNormalization. Everything computes in f64.

use super::common::{Lanes, ReducePlan};
use crate::util::{axis, broadcast_index, opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Data, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

/// A tensor of float `dtype` from f64 values.
fn floats(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor, OpError> {
    Ok(Tensor::new(shape, Data::from_f64_vec(dtype, v)?)?)
}

/// A float input of exactly `n` elements, as f64.
fn param(t: &Tensor, n: usize, what: &str) -> Result<Vec<f64>, OpError> {
    if !t.dtype().is_float() {
        bail!("{what} must be a float tensor, got {}", t.dtype());
    }
    if t.len() != n {
        bail!("{what} has {} elements, expected {n}", t.len());
    }
    Ok(t.to_f64_vec()?)
}

/// X of shape (N, C, ...): its channel count and the size of one channel's spatial block.
fn channels(x: &Tensor) -> Result<(usize, usize), OpError> {
    if x.rank() < 2 || !x.dtype().is_float() {
        bail!("X must be a float tensor of rank >= 2, got {} of shape {:?}", x.dtype(), x.shape());
    }
    Ok((x.shape()[1], x.shape()[2..].iter().product()))
}

/// Mean and (population) variance of the values at `idx`.
fn moments(xs: &[f64], idx: impl Iterator<Item = usize> + Clone) -> (f64, f64) {
    let n = idx.clone().count() as f64;
    let mean = idx.clone().map(|i| xs[i]).sum::<f64>() / n;
    let var = idx.map(|i| (xs[i] - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

/// BatchNormalization. Inference uses the given mean/var; training mode (attribute from
/// opset 14, or extra outputs requested before it) uses the batch's statistics and also
/// returns the updated running mean and variance (then the batch mean and variance).
/// Before opset 9, `spatial=0` gives every activation (C, D1, ...) its own parameters.
pub fn batch_norm(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = req(inputs, 0)?;
    let (c, spatial) = channels(x)?;
    let per_activation = ctx.opset() < 9 && ctx.attr_i("spatial", 1) == 0;
    let n = if per_activation { c * spatial } else { c };
    let scale = param(req(inputs, 1)?, n, "scale")?;
    let bias = param(req(inputs, 2)?, n, "B")?;
    let mean_t = req(inputs, 3)?;
    let mean = param(mean_t, n, "input_mean")?;
    let var = param(req(inputs, 4)?, n, "input_var")?;
    let eps = ctx.attr_f("epsilon", 1e-5) as f64;
    let momentum = ctx.attr_f("momentum", 0.9) as f64;
    let training = if ctx.opset() >= 14 {
        ctx.attr_i("training_mode", 0) != 0
    } else {
        ctx.node.outputs.iter().skip(1).any(Option::is_some)
    };
    let xs = x.to_f64_vec()?;
    let (use_mean, use_var) = if training {
        // Statistics over every axis but the channel (or, per activation, over the batch).
        let axes: Vec<usize> = if per_activation { vec![0] } else { (0..x.rank()).filter(|&a| a != 1).collect() };
        let plan = ReducePlan::new(x.shape(), &axes);
        (0..n).map(|p| moments(&xs, plan.group(p).iter().copied())).unzip()
    } else {
        (mean.clone(), var.clone())
    };
    let y: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = if per_activation { i % n.max(1) } else { (i / spatial.max(1)) % c.max(1) };
            (v - use_mean[p]) / (use_var[p] + eps).sqrt() * scale[p] + bias[p]
        })
        .collect();
    let mut out = vec![floats(x.dtype(), x.shape().to_vec(), &y)?];
    if training {
        let run = |old: &[f64], cur: &[f64]| -> Vec<f64> { old.iter().zip(cur).map(|(o, n)| o * momentum + n * (1.0 - momentum)).collect() };
        let (md, shape) = (mean_t.dtype(), mean_t.shape().to_vec());
        out.push(floats(md, shape.clone(), &run(&mean, &use_mean))?);
        out.push(floats(md, shape.clone(), &run(&var, &use_var))?);
        out.push(floats(md, shape.clone(), &use_mean)?);
        out.push(floats(md, shape, &use_var)?);
    }
    Ok(out)
}

/// InstanceNormalization: each (n, c) spatial block normalised, then scaled per channel.
pub fn instance_norm(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = req(inputs, 0)?;
    let (c, _) = channels(x)?;
    let scale = param(req(inputs, 1)?, c, "scale")?;
    let bias = param(req(inputs, 2)?, c, "B")?;
    let eps = ctx.attr_f("epsilon", 1e-5) as f64;
    let xs = x.to_f64_vec()?;
    let lanes = Lanes::coerced_2d(x.shape(), 2);
    let mut y = vec![0.0; xs.len()];
    for lane in 0..lanes.count() {
        let ch = lane % c;
        let (m, v) = moments(&xs, lanes.indices(lane));
        for i in lanes.indices(lane) {
            y[i] = (xs[i] - m) / (v + eps).sqrt() * scale[ch] + bias[ch];
        }
    }
    Ok(vec![floats(x.dtype(), x.shape().to_vec(), &y)?])
}

/// GroupNormalization: channels split into `num_groups` groups normalised together; scale
/// and bias are per channel (opset 21) or per group (opset 18).
pub fn group_norm(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = req(inputs, 0)?;
    let (c, spatial) = channels(x)?;
    let groups = ctx.req_i("num_groups")?;
    if groups <= 0 || c % groups as usize != 0 {
        bail!("attribute 'num_groups' must be a positive divisor of the {c} channels, got {groups}");
    }
    let groups = groups as usize;
    let (scale_t, bias_t) = (req(inputs, 1)?, req(inputs, 2)?);
    let per_channel = scale_t.len() == c;
    let n = if per_channel { c } else { groups };
    let (scale, bias) = (param(scale_t, n, "scale")?, param(bias_t, n, "bias")?);
    let eps = ctx.attr_f("epsilon", 1e-5) as f64;
    let xs = x.to_f64_vec()?;
    let group_len = c / groups * spatial;
    let lanes = Lanes { outer: xs.len() / group_len.max(1), len: group_len, inner: 1 };
    let mut y = vec![0.0; xs.len()];
    for lane in 0..lanes.count() {
        let (m, v) = moments(&xs, lanes.indices(lane));
        for i in lanes.indices(lane) {
            let ch = (i / spatial.max(1)) % c;
            let p = if per_channel { ch } else { ch / (c / groups) };
            y[i] = (xs[i] - m) / (v + eps).sqrt() * scale[p] + bias[p];
        }
    }
    Ok(vec![floats(x.dtype(), x.shape().to_vec(), &y)?])
}

/// LayerNormalization over axes `axis..rank`; Scale and B broadcast to X. Also returns
/// Mean and InvStdDev (shape X.shape[..axis] followed by 1s) in the stash type.
pub fn layer_norm(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let x = req(inputs, 0)?;
    if !x.dtype().is_float() {
        bail!("X must be a float tensor, got {}", x.dtype());
    }
    let ax = axis(ctx.attr_i("axis", -1), x.rank())?;
    let eps = ctx.attr_f("epsilon", 1e-5) as f64;
    let stash = ctx.attr_i("stash_type", 1);
    let stash = i32::try_from(stash)
        .ok()
        .and_then(DType::from_onnx)
        .filter(|d| d.is_float())
        .ok_or_else(|| OpError::Invalid(format!("attribute 'stash_type' must be a float type code, got {stash}")))?;
    let shape = x.shape();
    // A parameter's values and, per element of X, the index of the value it uses.
    type Param = (Vec<f64>, Vec<usize>);
    let param_at = |t: Option<&Tensor>| -> Result<Option<Param>, OpError> {
        let Some(t) = t else { return Ok(None) };
        let b = crate::util::broadcast_shapes(&[t.shape(), shape])?;
        if b != shape {
            bail!("parameter of shape {:?} does not broadcast to X of shape {shape:?}", t.shape());
        }
        Ok(Some((t.to_f64_vec()?, broadcast_index(t.shape(), shape))))
    };
    let scale = param_at(Some(req(inputs, 1)?))?;
    let bias = param_at(opt(inputs, 2))?;
    let xs = x.to_f64_vec()?;
    let lanes = Lanes::coerced_2d(shape, ax);
    let mut y = vec![0.0; xs.len()];
    let (mut means, mut inv_stds) = (Vec::with_capacity(lanes.count()), Vec::with_capacity(lanes.count()));
    for lane in 0..lanes.count() {
        let (m, v) = moments(&xs, lanes.indices(lane));
        let inv = 1.0 / (v + eps).sqrt();
        for i in lanes.indices(lane) {
            let s = scale.as_ref().map_or(1.0, |(v, idx)| v[idx[i]]);
            let b = bias.as_ref().map_or(0.0, |(v, idx)| v[idx[i]]);
            y[i] = (xs[i] - m) * inv * s + b;
        }
        means.push(m);
        inv_stds.push(inv);
    }
    let stat_shape: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if i < ax { d } else { 1 }).collect();
    Ok(vec![
        floats(x.dtype(), shape.to_vec(), &y)?,
        floats(stash, stat_shape.clone(), &means)?,
        floats(stash, stat_shape, &inv_stds)?,
    ])
}
