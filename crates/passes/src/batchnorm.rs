//! BatchNormalization folding: `BN(Conv(x, W, B))` becomes `Conv(x, W', B')` (likewise
//! `ConvTranspose`, whose weights `[C_in, C_out / group, kh, kw]` scale along axis 1 per group;
//! and for either, a bias added by a per-channel `Add` between conv and BN),
//! `BN(Gemm(a, W, C))` becomes `Gemm(a, W', C')` and `BN(MatMul(a, W) [+ c])` (2-D) becomes
//! `MatMul(a, W') + c'`, with `s = scale / sqrt(var + eps)`, W' = W scaled by `s` along the
//! output channel, and the bias `(B - mean) * s + beta`. A Conv followed by a `Mul` of a
//! constant that is one value or one per output channel folds the same way (s = that
//! constant, no shift). The product's output must feed only the BN (or Mul), and every
//! parameter must be a constant. New parameters are computed in f64.

use crate::util::{Names, View, derived_name, extra_outputs_used, input, is_op, make_node, output};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{Data, Tensor};
use std::collections::HashSet;

pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batchnorm"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut names = Names::of(g);
        let mut patch = GraphPatch::new(g, "");
        let mut claimed: HashSet<NodeId> = HashSet::new();
        let mut done = Vec::new();
        for (i, bn) in g.nodes.iter().enumerate() {
            let Some((m, x)) = bn_params(&view, bn).or_else(|| conv_scale(&view, bn)) else { continue };
            let Some((p, prod)) = view.producer(x) else { continue };
            if claimed.contains(&p) || claimed.contains(&NodeId(i)) || view.sole_reader(x).is_none() {
                continue;
            }
            if is_op(bn, "Mul") && !is_op(prod, "Conv") {
                continue;
            }
            let folded = if is_op(prod, "Conv") {
                fold_conv(&view, &mut patch, &mut names, prod, bn, &m)
            } else if is_op(prod, "ConvTranspose") && is_op(bn, "BatchNormalization") {
                fold_conv_transpose(&view, &mut patch, &mut names, prod, bn, &m)
            } else if is_op(prod, "Gemm") {
                fold_gemm(&view, &mut patch, &mut names, prod, bn, &m)
            } else if is_op(prod, "Add") || is_op(prod, "MatMul") {
                fold_conv_add(&view, &mut patch, &mut names, &claimed, p, bn, &m)
                    .or_else(|| fold_matmul(&view, &mut patch, &mut names, &mut claimed, p, bn, &m))
            } else {
                None
            };
            if let Some(removed) = folded {
                claimed.insert(p);
                claimed.extend(removed.iter().copied());
                patch.remove_node(p);
                removed.iter().for_each(|&r| patch.remove_node(r));
                patch.remove_node(NodeId(i));
                done.push(format!("{} '{}' into {} '{}'", bn.op_type, bn.label(), prod.op_type, prod.label()));
            }
        }
        if done.is_empty() {
            return Ok(None);
        }
        let more = if done.len() > 3 { format!(" and {} more", done.len() - 3) } else { String::new() };
        patch.description = format!("fold {}{more}", done.iter().take(3).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

/// Per-channel `s` and `t` with `BN(y) = s * y + t`.
struct Affine {
    s: Vec<f64>,
    t: Vec<f64>,
}

fn floats(view: &View, v: Option<ValueId>) -> Option<Vec<f64>> {
    view.constant(v?)?.to_f64_vec().ok()
}

/// The affine map of an inference-mode BatchNormalization and its input.
fn bn_params(view: &View, bn: &Node) -> Option<(Affine, ValueId)> {
    if !is_op(bn, "BatchNormalization") || bn.attr_int("training_mode").unwrap_or(0) != 0 || extra_outputs_used(view, bn) {
        return None;
    }
    let (scale, bias, mean, var) =
        (floats(view, input(bn, 1))?, floats(view, input(bn, 2))?, floats(view, input(bn, 3))?, floats(view, input(bn, 4))?);
    let c = scale.len();
    if [bias.len(), mean.len(), var.len()].iter().any(|&l| l != c) {
        return None;
    }
    let eps = f64::from(bn.attr_float("epsilon").unwrap_or(1e-5));
    let s: Vec<f64> = (0..c).map(|k| scale[k] / (var[k] + eps).sqrt()).collect();
    let t: Vec<f64> = (0..c).map(|k| bias[k] - mean[k] * s[k]).collect();
    Some((Affine { s, t }, input(bn, 0)?))
}

/// `Mul(Conv(..), c)` with `c` one value or one per output channel: the scale and the input.
fn conv_scale(view: &View, mul: &Node) -> Option<(Affine, ValueId)> {
    if !is_op(mul, "Mul") {
        return None;
    }
    let (x, c, _) = crate::util::split_const(view, mul)?;
    let (_, conv) = view.producer_op(x, "Conv")?;
    let w = view.constant(input(conv, 1)?)?;
    let ct = view.constant(c)?;
    let (r, m) = (w.rank(), *w.shape().first()?);
    if ct.rank() > r || ct.dtype() != w.dtype() {
        return None;
    }
    // Right-aligned with the conv output: every axis 1 but the channel axis (1).
    let off = r - ct.rank();
    if ct.shape().iter().enumerate().any(|(j, &d)| d != 1 && !(off + j == 1 && d == m)) {
        return None;
    }
    let cv = ct.to_f64_vec().ok()?;
    let s: Vec<f64> = (0..m).map(|k| cv[if cv.len() == 1 { 0 } else { k }]).collect();
    Some((Affine { s, t: vec![0.0; m] }, x))
}

/// A tensor of `like`'s type from f64 values.
fn tensor_like(like: &Tensor, shape: Vec<usize>, v: &[f64]) -> Option<Tensor> {
    Tensor::new(shape, Data::from_f64_vec(like.dtype(), v).ok()?).ok()
}

/// Scales `w` by `s[k]` where k is the index along `axis` (of a row-major shape).
fn scale_along(w: &Tensor, axis: usize, s: &[f64]) -> Option<Tensor> {
    let shape = w.shape();
    if shape.get(axis) != Some(&s.len()) {
        return None;
    }
    let inner: usize = shape[axis + 1..].iter().product();
    let v: Vec<f64> = w.to_f64_vec().ok()?.iter().enumerate().map(|(i, &x)| x * s[(i / inner.max(1)) % s.len()]).collect();
    tensor_like(w, shape.to_vec(), &v)
}

fn fold_conv(view: &View, patch: &mut GraphPatch, names: &mut Names, conv: &Node, bn: &Node, m: &Affine) -> Option<Vec<NodeId>> {
    let w2 = scale_along(view.constant(input(conv, 1)?)?, 0, &m.s)?;
    replace_conv(view, patch, names, conv, bn, m, w2, None)
}

/// ConvTranspose weights `[C_in, C_out / g, kh, kw]`: input channel `ci` belongs to group
/// `ci / (C_in / g)`, whose output channels are `g_idx * C_out / g + j`.
fn fold_conv_transpose(view: &View, patch: &mut GraphPatch, names: &mut Names, ct: &Node, bn: &Node, m: &Affine) -> Option<Vec<NodeId>> {
    let w2 = conv_transpose_weights(view, ct, m)?;
    replace_conv(view, patch, names, ct, bn, m, w2, None)
}

/// `BN(Add(conv(x), c))` with `conv` a Conv or ConvTranspose without bias and `c` one value
/// or one per output channel: `c` becomes the bias, and the Add (`p`) and conv go.
fn fold_conv_add(view: &View, patch: &mut GraphPatch, names: &mut Names, claimed: &HashSet<NodeId>, p: NodeId, bn: &Node, m: &Affine) -> Option<Vec<NodeId>> {
    let (x, c, _) = crate::util::split_const(view, view.node(p))?;
    let (conv_id, conv) = view.producer_op(x, "ConvTranspose").or_else(|| view.producer_op(x, "Conv"))?;
    view.sole_reader(x)?;
    if claimed.contains(&conv_id) || input(conv, 2).is_some() || !is_op(bn, "BatchNormalization") {
        return None;
    }
    let (ct, n) = (view.constant(c)?, m.s.len());
    let rank = view.constant(input(conv, 1)?)?.rank();
    let cv = ct.to_f64_vec().ok()?;
    // Right-aligned with the conv output: every axis 1 but the channel axis (1).
    let off = rank.checked_sub(ct.rank())?;
    if ct.shape().iter().enumerate().any(|(j, &d)| d != 1 && !(off + j == 1 && d == n)) {
        return None;
    }
    let added: Vec<f64> = (0..n).map(|k| cv[if cv.len() == 1 { 0 } else { k }]).collect();
    let w2 = if is_op(conv, "Conv") { scale_along(view.constant(input(conv, 1)?)?, 0, &m.s)? } else { conv_transpose_weights(view, conv, m)? };
    replace_conv(view, patch, names, conv, bn, m, w2, Some(added))?;
    Some(vec![conv_id])
}

/// ConvTranspose weights scaled by `m.s` per output channel.
fn conv_transpose_weights(view: &View, ct: &Node, m: &Affine) -> Option<Tensor> {
    let w = view.constant(input(ct, 1)?)?;
    let groups = usize::try_from(ct.attr_int("group").unwrap_or(1)).ok().filter(|&g| g >= 1)?;
    let (&cin, &cout_g) = (w.shape().first()?, w.shape().get(1)?);
    if w.rank() < 3 || !cin.is_multiple_of(groups) || cout_g * groups != m.s.len() {
        return None;
    }
    let inner: usize = w.shape()[2..].iter().product();
    let per_group = cin / groups;
    let v: Vec<f64> = w
        .to_f64_vec()
        .ok()?
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let (ci, j) = (i / (cout_g * inner), (i / inner.max(1)) % cout_g);
            x * m.s[ci / per_group * cout_g + j]
        })
        .collect();
    tensor_like(w, w.shape().to_vec(), &v)
}

/// `conv` (Conv or ConvTranspose: bias input 2, one value per output channel) with weights
/// `w2` and bias `(B - mean) * s + beta`, writing `bn`'s output. `added` is a per-channel
/// bias applied by an `Add` between the two (which the caller removes), else None.
#[allow(clippy::too_many_arguments)]
fn replace_conv(
    view: &View,
    patch: &mut GraphPatch,
    names: &mut Names,
    conv: &Node,
    bn: &Node,
    m: &Affine,
    w2: Tensor,
    added: Option<Vec<f64>>,
) -> Option<Vec<NodeId>> {
    let w_id = input(conv, 1)?;
    let w = view.constant(w_id)?;
    let had_bias = input(conv, 2).is_some() || added.is_some();
    let b: Vec<f64> = match (input(conv, 2), added) {
        (Some(b), None) => floats(view, Some(b))?,
        (None, Some(a)) => a,
        (None, None) => vec![0.0; m.s.len()],
        (Some(_), Some(_)) => return None,
    };
    if b.len() != m.s.len() {
        return None;
    }
    let b2: Vec<f64> = (0..b.len()).map(|k| b[k] * m.s[k] + m.t[k]).collect();
    let wv = patch.add_constant(names.fresh(&format!("{}_bn", view.g.value(w_id).name)), w2);
    // A scale alone adds no bias where there was none.
    let bv = if !had_bias && b2.iter().all(|&v| v == 0.0) {
        None
    } else {
        Some(patch.add_constant(names.fresh(&format!("{}_bias", view.g.value(output(bn, 0)?).name)), tensor_like(w, vec![b2.len()], &b2)?))
    };
    let mut new = conv.clone();
    new.inputs = vec![input(conv, 0), Some(wv)];
    if bv.is_some() {
        new.inputs.push(bv);
    }
    new.outputs = vec![output(bn, 0)];
    patch.add_node(new);
    Some(vec![])
}

fn fold_gemm(view: &View, patch: &mut GraphPatch, names: &mut Names, gemm: &Node, bn: &Node, m: &Affine) -> Option<Vec<NodeId>> {
    let w_id = input(gemm, 1)?;
    let w = view.constant(w_id)?;
    if w.rank() != 2 {
        return None;
    }
    let trans_b = gemm.attr_int("transB").unwrap_or(0) != 0;
    let w2 = scale_along(w, if trans_b { 0 } else { 1 }, &m.s)?;
    let beta = f64::from(gemm.attr_float("beta").unwrap_or(1.0));
    let n = m.s.len();
    // C' = beta * C * s + t, over C broadcast to (rows, n) where C has rows.
    let (c_shape, c2) = match input(gemm, 2) {
        Some(c) => {
            let ct = view.constant(c)?;
            let cv = ct.to_f64_vec().ok()?;
            let (rows, cols) = match ct.shape() {
                [] => (1, 1),
                [k] => (1, *k),
                [r, k] => (*r, *k),
                _ => return None,
            };
            if cols != 1 && cols != n {
                return None;
            }
            let v: Vec<f64> =
                (0..rows * n).map(|i| beta * cv[(i / n) * cols + if cols == 1 { 0 } else { i % n }] * m.s[i % n] + m.t[i % n]).collect();
            (if rows == 1 { vec![n] } else { vec![rows, n] }, v)
        }
        None => (vec![n], m.t.clone()),
    };
    let wv = patch.add_constant(names.fresh(&format!("{}_bn", view.g.value(w_id).name)), w2);
    let cv = patch.add_constant(names.fresh(&format!("{}_bias", view.g.value(output(bn, 0)?).name)), tensor_like(w, c_shape, &c2)?);
    let mut new = gemm.clone();
    new.inputs = vec![input(gemm, 0), Some(wv), Some(cv)];
    new.outputs = vec![output(bn, 0)];
    new.attrs.insert("beta".into(), Attr::Float(1.0));
    patch.add_node(new);
    Some(vec![])
}

/// BN over a 2-D `MatMul(a, W)` or `MatMul(a, W) + c` (channels on the last axis).
fn fold_matmul(
    view: &View,
    patch: &mut GraphPatch,
    names: &mut Names,
    claimed: &mut HashSet<NodeId>,
    p: NodeId,
    bn: &Node,
    m: &Affine,
) -> Option<Vec<NodeId>> {
    let prod = view.node(p);
    let (mm_id, mm, c) = if is_op(prod, "Add") {
        let (x, c, _) = crate::util::split_const(view, prod)?;
        let (mm_id, mm) = view.producer_op(x, "MatMul")?;
        view.sole_reader(x)?;
        (mm_id, mm, Some(view.constant(c)?))
    } else {
        (p, prod, None)
    };
    if claimed.contains(&mm_id) || view.rank(output(mm, 0)?) != Some(2) {
        return None;
    }
    let w_id = input(mm, 1)?;
    let w = view.constant(w_id)?;
    if w.rank() != 2 {
        return None;
    }
    let n = m.s.len();
    let w2 = scale_along(w, 1, &m.s)?;
    let c2: Vec<f64> = match c {
        Some(c) => {
            let cv = c.to_f64_vec().ok()?;
            if c.rank() > 2 || c.shape().iter().rev().skip(1).any(|&d| d != 1) || (cv.len() != 1 && cv.len() != n) {
                return None;
            }
            (0..n).map(|k| cv[if cv.len() == 1 { 0 } else { k }] * m.s[k] + m.t[k]).collect()
        }
        None => m.t.clone(),
    };
    let out = output(bn, 0)?;
    let wv = patch.add_constant(names.fresh(&format!("{}_bn", view.g.value(w_id).name)), w2);
    let cv = patch.add_constant(names.fresh(&format!("{}_bias", view.g.value(out).name)), tensor_like(w, vec![n], &c2)?);
    let info = view.g.value(out);
    let mid = patch.add_value(names.fresh(&format!("{}_bn", view.g.value(output(mm, 0)?).name)), info.dtype, info.shape.clone());
    let mut new_mm = mm.clone();
    new_mm.inputs = vec![input(mm, 0), Some(wv)];
    new_mm.outputs = vec![Some(mid)];
    patch.add_node(new_mm);
    patch.add_node(make_node(
        &derived_name(mm, "_bias"),
        "",
        "Add",
        prod.opset,
        vec![Some(mid), Some(cv)],
        vec![Some(out)],
        Default::default(),
    ));
    claimed.insert(mm_id);
    Some(if mm_id == p { vec![] } else { vec![mm_id] })
}
