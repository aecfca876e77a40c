//! Conv / MatMul / Gemm + bias Add + activation -> `kiln::FusedConv` / `kiln::FusedMatMul`;
//! the same bias and activation join a `kiln::QMatMul` / `kiln::QConv` (bias at input 6) and a
//! `kiln::WMatMul` (bias at input 4).
//!
//! After the product, an `Add` of a constant that broadcasts along the output channel (Conv:
//! axis 1; MatMul / Gemm: the last axis) becomes the bias: folded into Conv's B, Gemm's C,
//! or given as MatMul's bias input unchanged. Then one activation: Relu, LeakyRelu, Clip
//! (constant bounds), Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, or `x * Sigmoid(x)` (silu).
//! Every Conv and Gemm becomes a fused op (activation "none" when there is none); a MatMul
//! only when a bias or an activation joins it. Each joined value must be read by the next
//! op alone.

use crate::util::{Names, View, describe, input, is_op, make_node, output, split_const, string_attr};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{Data, Tensor};
use std::collections::{BTreeMap, HashSet};

pub struct FuseActivation;

impl Pass for FuseActivation {
    fn name(&self) -> &'static str {
        "fuse-activation"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut names = Names::of(g);
        let mut patch = GraphPatch::new(g, "");
        let mut claimed: HashSet<NodeId> = HashSet::new();
        let mut done: Vec<String> = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let kind = if is_op(n, "Conv") {
                Kind::Conv
            } else if is_op(n, "Gemm") {
                Kind::Gemm
            } else if is_op(n, "MatMul") {
                Kind::MatMul
            } else if is_unfused_kiln(n, "QMatMul") {
                Kind::QMatMul
            } else if is_unfused_kiln(n, "QConv") {
                Kind::QConv
            } else if is_unfused_kiln(n, "WMatMul") {
                Kind::WMatMul
            } else {
                continue;
            };
            if claimed.contains(&NodeId(i)) {
                continue;
            }
            let Some(f) = fuse(&view, &mut patch, &mut names, &claimed, n, kind) else {
                continue;
            };
            claimed.insert(NodeId(i));
            patch.remove_node(NodeId(i));
            for r in &f.removed {
                claimed.insert(*r);
                patch.remove_node(*r);
            }
            done.push(format!("{} '{}'{}", n.op_type, n.label(), f.summary));
        }
        if done.is_empty() {
            return Ok(None);
        }
        patch.description = describe("fuse ", &done);
        Ok(Some(patch))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Conv,
    Gemm,
    MatMul,
    QMatMul,
    QConv,
    WMatMul,
}

impl Kind {
    fn is_conv(self) -> bool {
        matches!(self, Kind::Conv | Kind::QConv)
    }

    /// Where the op keeps its weights and its bias.
    fn slots(self) -> (usize, usize) {
        match self {
            Kind::QMatMul | Kind::QConv => (3, 6),
            Kind::WMatMul => (1, 4),
            _ => (1, 2),
        }
    }

    fn fused_op(self) -> &'static str {
        match self {
            Kind::Conv => "FusedConv",
            Kind::Gemm | Kind::MatMul => "FusedMatMul",
            Kind::QMatMul => "QMatMul",
            Kind::QConv => "QConv",
            Kind::WMatMul => "WMatMul",
        }
    }
}

/// A kiln::QMatMul / QConv that no bias or activation has joined yet (a fused one always has
/// the `activation` attribute).
fn is_unfused_kiln(n: &Node, op: &str) -> bool {
    n.domain == "kiln" && n.op_type == op && n.unsupported.is_none() && !n.attrs.contains_key("activation")
}

struct Fused {
    removed: Vec<NodeId>,
    summary: String,
}

fn fuse(view: &View, patch: &mut GraphPatch, names: &mut Names, claimed: &HashSet<NodeId>, n: &Node, kind: Kind) -> Option<Fused> {
    let mut out = output(n, 0)?;
    let mut removed = Vec::new();
    let mut inputs: Vec<Option<ValueId>> = n.inputs.clone();
    let mut attrs: BTreeMap<String, Attr> = n.attrs.clone();
    let mut summary = String::new();
    if kind == Kind::Gemm {
        attrs.remove("broadcast");
        for (k, d) in [("transA", Attr::Int(0)), ("transB", Attr::Int(0)), ("alpha", Attr::Float(1.0)), ("beta", Attr::Float(1.0))] {
            attrs.entry(k.to_string()).or_insert(d);
        }
    }
    // Bias.
    if let Some((add_id, add)) = view.sole_reader(out).filter(|(id, a)| is_op(a, "Add") && !claimed.contains(id))
        && let Some((_, c, _)) = split_const(view, add)
        && let Some(bias) = bias_input(&Site { view, n, kind, out }, patch, names, c, &mut attrs)
    {
        inputs.resize(kind.slots().1, None);
        inputs.push(Some(bias));
        removed.push(add_id);
        out = output(add, 0)?;
        summary.push_str(" + bias");
    }
    // Activation.
    let mut act: Option<(&str, Vec<(&str, Attr)>)> = None;
    if let Some((a_id, a)) = view.sole_reader(out).filter(|(id, _)| !claimed.contains(id))
        && let Some(found) = activation(view, a)
    {
        act = Some(found);
        removed.push(a_id);
        out = output(a, 0)?;
    } else if let Some((ids, end)) = silu(view, out, claimed) {
        act = Some(("silu", vec![]));
        removed.extend(ids);
        out = end;
    }
    if act.is_none() && removed.is_empty() && matches!(kind, Kind::MatMul | Kind::QMatMul | Kind::QConv | Kind::WMatMul) {
        return None;
    }
    let (name, params) = act.unwrap_or(("none", vec![]));
    attrs.insert("activation".into(), string_attr(name));
    for (k, v) in params {
        attrs.insert(k.to_string(), v);
    }
    if name != "none" {
        summary.push_str(&format!(" + {name}"));
    }
    patch.add_node(make_node(&n.name, "kiln", kind.fused_op(), 1, inputs, vec![Some(out)], attrs));
    Some(Fused { removed, summary })
}

/// The product being fused: its node, kind and output.
struct Site<'a, 'g> {
    view: &'a View<'g>,
    n: &'a Node,
    kind: Kind,
    out: ValueId,
}

/// The bias input for an `Add(out, c)` after the product, or None when `c` does not
/// broadcast along the output channel alone.
fn bias_input(site: &Site, patch: &mut GraphPatch, names: &mut Names, c: ValueId, attrs: &mut BTreeMap<String, Attr>) -> Option<ValueId> {
    let Site { view, n, kind, out } = *site;
    let ct = view.constant(c)?;
    let rank = view.rank(out)?;
    if ct.rank() > rank || ct.dtype() != view.g.value(out).dtype? {
        return None;
    }
    let dims = ct.shape();
    // The channel axis, counted from the end of `out`'s shape.
    let (w_slot, b_slot) = kind.slots();
    let from_end = if kind.is_conv() { rank.checked_sub(2)? } else { 0 };
    let channels = if kind.is_conv() {
        view.constant(input(n, w_slot)?).and_then(|w| w.shape().first().copied()).or_else(|| view.shape(out)?.0.get(1)?.known())?
    } else {
        view.shape(out)?.0.last()?.known()?
    };
    let ok = dims.iter().rev().enumerate().all(|(i, &d)| d == 1 || (i == from_end && d == channels));
    if !ok {
        return None;
    }
    let cv = ct.to_f64_vec().ok()?;
    let per_channel = |k: usize| cv[if cv.len() == 1 { 0 } else { k }];
    match kind {
        Kind::MatMul => Some(c),
        Kind::Conv | Kind::QConv | Kind::QMatMul | Kind::WMatMul => {
            let b: Vec<f64> = match input(n, b_slot) {
                Some(b) => view.constant(b)?.to_f64_vec().ok()?,
                None => vec![0.0; channels],
            };
            if b.len() != channels {
                return None;
            }
            let v: Vec<f64> = (0..channels).map(|k| b[k] + per_channel(k)).collect();
            let t = Tensor::new(vec![channels], Data::from_f64_vec(ct.dtype(), &v).ok()?).ok()?;
            Some(patch.add_constant(names.fresh(&format!("{}_bias", view.g.value(out).name)), t))
        }
        Kind::Gemm => {
            let beta = f64::from(attrs.get("beta").and_then(Attr::as_float).unwrap_or(1.0));
            let (shape, v): (Vec<usize>, Vec<f64>) = match input(n, 2) {
                None => (vec![channels], (0..channels).map(per_channel).collect()),
                Some(old) => {
                    let ot = view.constant(old)?;
                    let ov = ot.to_f64_vec().ok()?;
                    let (rows, cols) = match ot.shape() {
                        [] => (1, 1),
                        [k] => (1, *k),
                        [r, k] => (*r, *k),
                        _ => return None,
                    };
                    if cols != 1 && cols != channels {
                        return None;
                    }
                    let v = (0..rows * channels)
                        .map(|i| beta * ov[(i / channels) * cols + if cols == 1 { 0 } else { i % channels }] + per_channel(i % channels))
                        .collect();
                    (if rows == 1 { vec![channels] } else { vec![rows, channels] }, v)
                }
            };
            attrs.insert("beta".into(), Attr::Float(1.0));
            let t = Tensor::new(shape, Data::from_f64_vec(ct.dtype(), &v).ok()?).ok()?;
            Some(patch.add_constant(names.fresh(&format!("{}_bias", view.g.value(out).name)), t))
        }
    }
}

/// The activation name and parameters of a one-input activation node.
fn activation<'a>(view: &View, a: &'a Node) -> Option<(&'a str, Vec<(&'a str, Attr)>)> {
    let f = |name: &str, default: f32| Attr::Float(a.attr_float(name).unwrap_or(default));
    let simple = [("Relu", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("HardSwish", "hard_swish")];
    if let Some((_, name)) = simple.iter().find(|(op, _)| is_op(a, op)) {
        return Some((name, vec![]));
    }
    if is_op(a, "LeakyRelu") {
        return Some(("leaky_relu", vec![("activation_alpha", f("alpha", 0.01))]));
    }
    if is_op(a, "HardSigmoid") {
        return Some(("hard_sigmoid", vec![("activation_alpha", f("alpha", 0.2)), ("activation_beta", f("beta", 0.5))]));
    }
    if is_op(a, "Gelu") {
        return Some(("gelu", vec![("activation_approximate", string_attr(a.attr_str("approximate").unwrap_or("none")))]));
    }
    if is_op(a, "Clip") {
        let mut params = Vec::new();
        if a.opset < 11 {
            for (k, name) in [("min", "activation_min"), ("max", "activation_max")] {
                if let Some(v) = a.attr_float(k) {
                    params.push((name, Attr::Float(v)));
                }
            }
        } else {
            for (k, name) in [(1, "activation_min"), (2, "activation_max")] {
                if let Some(v) = input(a, k) {
                    let t = view.constant(v)?;
                    if t.len() != 1 {
                        return None;
                    }
                    params.push((name, Attr::Float(*t.to_f64_vec().ok()?.first()? as f32)));
                }
            }
        }
        return Some(("clip", params));
    }
    None
}

/// `x * Sigmoid(x)` after `x`: the Sigmoid and Mul nodes and the Mul's output.
fn silu(view: &View, x: ValueId, claimed: &HashSet<NodeId>) -> Option<(Vec<NodeId>, ValueId)> {
    if view.pinned(x) {
        return None;
    }
    let readers = view.readers(x);
    if readers.len() != 2 {
        return None;
    }
    let (s_id, s) = readers.iter().map(|(r, _)| (*r, view.node(*r))).find(|(_, n)| is_op(n, "Sigmoid"))?;
    let s_out = output(s, 0)?;
    let (m_id, m) = view.sole_reader(s_out)?;
    if !is_op(m, "Mul") || claimed.contains(&s_id) || claimed.contains(&m_id) {
        return None;
    }
    let ins = (input(m, 0)?, input(m, 1)?);
    if ins != (x, s_out) && ins != (s_out, x) {
        return None;
    }
    Some((vec![s_id, m_id], output(m, 0)?))
}
