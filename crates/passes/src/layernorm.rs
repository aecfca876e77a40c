//! The LayerNorm pattern over the last axis becomes `LayerNormalization(x, gamma, beta)`:
//!
//! ```text
//! m = ReduceMean(x, [-1]); d = Sub(x, m); v = ReduceMean(Pow(d, 2) | Mul(d, d), [-1])
//! n = Div(d, Sqrt(Add(v, eps))) | Mul(d, Reciprocal(Sqrt(Add(v, eps))))
//! y = [Add(] [Mul(] n [, gamma)] [, beta)]
//! ```
//! gamma and beta must be constants (a missing gamma is ones; a missing beta is left out).
//! The new node uses ai.onnx opset 17 (where LayerNormalization appeared) or the graph's own.

use crate::util::{Names, View, axes_of, input, is_op, make_node, onnx_opset, output, split_const};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{Data, Tensor};
use std::collections::{BTreeMap, HashSet};

pub struct FuseLayerNorm;

impl Pass for FuseLayerNorm {
    fn name(&self) -> &'static str {
        "fuse-layernorm"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut names = Names::of(g);
        let mut patch = GraphPatch::new(g, "");
        let mut claimed: HashSet<NodeId> = HashSet::new();
        let mut done = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            if !is_op(n, "ReduceMean") || claimed.contains(&NodeId(i)) {
                continue;
            }
            let Some(m) = match_layernorm(&view, NodeId(i)) else { continue };
            if m.nodes.iter().any(|k| claimed.contains(k)) {
                continue;
            }
            let x_info = g.value(m.x);
            // gamma and beta as 1-D constants of length C.
            let c = m.gamma.map(|t| t.len()).or_else(|| m.beta.map(|t| t.len())).or_else(|| x_info.shape.as_ref()?.0.last()?.known());
            let Some(c) = c else { continue };
            let Some(dt) = x_info.dtype.or_else(|| m.gamma.map(|t| t.dtype())) else { continue };
            let as_1d = |t: Option<&Tensor>, fill: f64| -> Option<Tensor> {
                let v = match t {
                    // Only the last axis may be longer than 1: the parameter runs along it.
                    Some(t) if t.len() == c && t.shape().iter().rev().skip(1).all(|&d| d == 1) => t.to_f64_vec().ok()?,
                    Some(_) => return None,
                    None => vec![fill; c],
                };
                Tensor::new(vec![c], Data::from_f64_vec(dt, &v).ok()?).ok()
            };
            let (Some(gamma), beta) = (as_1d(m.gamma, 1.0), m.beta.map(|b| as_1d(Some(b), 0.0))) else { continue };
            if beta.as_ref().is_some_and(Option::is_none) {
                continue;
            }
            let label = n.label();
            let base = g.value(m.out).name.clone();
            let gv = patch.add_constant(names.fresh(&format!("{base}_gamma")), gamma);
            let bv = beta.flatten().map(|b| patch.add_constant(names.fresh(&format!("{base}_beta")), b));
            let attrs = BTreeMap::from([("axis".to_string(), Attr::Int(-1)), ("epsilon".to_string(), Attr::Float(m.eps as f32))]);
            let opset = onnx_opset(n, 17);
            let mut inputs = vec![Some(m.x), Some(gv)];
            if let Some(b) = bv {
                inputs.push(Some(b));
            }
            patch.add_node(make_node(&n.name, "", "LayerNormalization", opset, inputs, vec![Some(m.out)], attrs));
            for k in &m.nodes {
                patch.remove_node(*k);
                claimed.insert(*k);
            }
            done.push(label);
        }
        if done.is_empty() {
            return Ok(None);
        }
        let more = if done.len() > 3 { format!(" and {} more", done.len() - 3) } else { String::new() };
        patch.description = format!("fuse LayerNorm patterns at {}{more}", done.iter().take(3).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

struct Match<'g> {
    x: ValueId,
    eps: f64,
    gamma: Option<&'g Tensor>,
    beta: Option<&'g Tensor>,
    out: ValueId,
    nodes: Vec<NodeId>,
}

/// A ReduceMean over the last axis, keeping dims.
fn last_axis_mean(view: &View, n: &Node) -> bool {
    if !is_op(n, "ReduceMean") || n.attr_int("keepdims").unwrap_or(1) == 0 {
        return false;
    }
    let Some(axes) = axes_of(view, n) else { return false };
    let rank = input(n, 0).and_then(|x| view.rank(x)).map(|r| r as i64);
    match axes.as_slice() {
        [-1] => true,
        [a] => rank.is_some_and(|r| *a == r - 1),
        _ => false,
    }
}

/// The one reader of `v` (which must not be pinned) when it is the op `op`.
fn next<'g>(view: &View<'g>, v: ValueId, op: &str) -> Option<(NodeId, &'g Node)> {
    view.sole_reader(v).filter(|(_, n)| is_op(n, op))
}

fn match_layernorm<'g>(view: &View<'g>, mean_id: NodeId) -> Option<Match<'g>> {
    let mean = view.node(mean_id);
    if !last_axis_mean(view, mean) {
        return None;
    }
    let x = input(mean, 0)?;
    let (sub_id, sub) = next(view, output(mean, 0)?, "Sub")?;
    if input(sub, 0)? != x || input(sub, 1)? != output(mean, 0)? {
        return None;
    }
    let d = output(sub, 0)?;
    let mut readers: Vec<(NodeId, &Node)> = view.readers(d).iter().map(|(r, _)| (*r, view.node(*r))).collect();
    readers.dedup_by_key(|(r, _)| *r);
    if view.pinned(d) || readers.len() != 2 {
        return None;
    }
    // Which reader squares d, which normalises it.
    let is_square = |n: &Node| {
        (is_op(n, "Pow") && input(n, 0) == Some(d) && input(n, 1).and_then(|e| view.scalar(e)) == Some(2.0))
            || (is_op(n, "Mul") && input(n, 0) == Some(d) && input(n, 1) == Some(d))
    };
    let (sq_id, sq) = *readers.iter().find(|(_, n)| is_square(n))?;
    let (norm_id, norm) = *readers.iter().find(|(id, _)| *id != sq_id)?;
    let (var_id, var) = view.sole_reader(output(sq, 0)?)?;
    if !last_axis_mean(view, var) {
        return None;
    }
    let (add_id, add) = next(view, output(var, 0)?, "Add")?;
    let (_, eps_v, _) = split_const(view, add)?;
    let eps = view.scalar(eps_v)?;
    let (sqrt_id, sqrt) = next(view, output(add, 0)?, "Sqrt")?;
    let s = output(sqrt, 0)?;
    let mut nodes = vec![mean_id, sub_id, sq_id, var_id, add_id, sqrt_id, norm_id];
    let normed = if is_op(norm, "Div") && input(norm, 0) == Some(d) && input(norm, 1) == Some(s) && view.sole_reader(s).is_some() {
        output(norm, 0)?
    } else if is_op(norm, "Mul") {
        let (r_id, r) = next(view, s, "Reciprocal")?;
        let rv = output(r, 0)?;
        let ins = (input(norm, 0)?, input(norm, 1)?);
        if (ins != (d, rv) && ins != (rv, d)) || view.sole_reader(rv)?.0 != norm_id {
            return None;
        }
        nodes.push(r_id);
        output(norm, 0)?
    } else {
        return None;
    };
    let mut out = normed;
    let mut gamma = None;
    let mut beta = None;
    if let Some((mul_id, mul)) = next(view, out, "Mul")
        && let Some((_, gv, _)) = split_const(view, mul)
    {
        gamma = view.constant(gv);
        nodes.push(mul_id);
        out = output(mul, 0)?;
    }
    if let Some((badd_id, badd)) = next(view, out, "Add")
        && let Some((_, bv, _)) = split_const(view, badd)
    {
        beta = view.constant(bv);
        nodes.push(badd_id);
        out = output(badd, 0)?;
    }
    Some(Match { x, eps, gamma, beta, out, nodes })
}
