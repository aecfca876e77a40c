//! Scaled dot-product attention becomes `kiln::Attention(Q, K, V, mask?)`:
//!
//! ```text
//! s = MatMul([Mul(] Q [, c)], K')        K' = Transpose(K) or a K given transposed
//! s = [Div(s, c) | Mul(s, c)]            a constant scale, before or after the product
//! s = [Add(s, mask)]
//! y = MatMul(Softmax(s, last axis), V)
//! ```
//! When K' is a Transpose whose permutation ends by swapping the last two axes of K, the
//! fused op reads K itself (`k_transposed = 0`); any other Transpose is rewritten so that it
//! yields K in (.., m, d) layout (or removed when that is the identity). Otherwise K' is
//! passed as it is (`k_transposed = 1`). The scales multiply into the `scale` attribute.
//!
//! When Q, K and V are each `Transpose(Reshape(x, [a, s, h, d]), [0, 2, 1, 3])` of an
//! `x` `[a, s, h*d]` (K's transpose may be the K' one), and the output is merged back by
//! `Reshape(Transpose(y, [0, 2, 1, 3]), [a, n, h*dv])`, the op takes the `x`s directly and
//! writes the merged value (`num_heads = h`): no head is copied out or back. Shape nodes
//! reading only the leading two dims of the `[a, n, h, dv]` value move to the output.

use crate::util::{Names, View, derived_name, input, is_op, make_node, output, split_const};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{Dim, Shape};
use std::collections::{BTreeMap, HashSet};

pub struct FuseAttention;

impl Pass for FuseAttention {
    fn name(&self) -> &'static str {
        "fuse-attention"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut names = Names::of(g);
        let mut patch = GraphPatch::new(g, "");
        let mut claimed: HashSet<NodeId> = HashSet::new();
        let mut done = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            if !is_op(n, "Softmax") || claimed.contains(&NodeId(i)) {
                continue;
            }
            let Some(m) = match_attention(&view, NodeId(i)) else { continue };
            if m.nodes.iter().any(|k| claimed.contains(k)) {
                continue;
            }
            if let Some(h) = heads_layout(&view, &m) {
                let mut attrs =
                    BTreeMap::from([("k_transposed".to_string(), Attr::Int(0)), ("num_heads".to_string(), Attr::Int(h.heads as i64))]);
                if m.scale != 1.0 {
                    attrs.insert("scale".into(), Attr::Float(m.scale as f32));
                }
                let inputs = vec![Some(h.q), Some(h.k), Some(h.v), m.mask];
                patch.add_node(make_node(&n.name, "kiln", "Attention", 1, inputs, vec![Some(h.out)], attrs));
                // Shape readers of the [b, n, h, dv] value read the same leading dims of the output.
                patch.replace_uses(h.merged, h.out);
                for s in h.shape_reads {
                    patch.set_facts(s, None, Some(Shape(vec![Dim::Known(3)])));
                }
                for k in m.nodes.iter().chain(&h.nodes) {
                    patch.remove_node(*k);
                    claimed.insert(*k);
                }
                done.push(n.label());
                continue;
            }
            let (k, k_transposed) = match m.k {
                KSource::Given(k) => (k, 1),
                KSource::Plain(k) => (k, 0),
                KSource::Permute(src, perm) => {
                    let shape =
                        view.shape(src).and_then(|s| perm.iter().map(|&p| s.0.get(p as usize).cloned()).collect::<Option<Vec<Dim>>>());
                    let name = names.fresh(&format!("{}_t", g.value(src).name));
                    let kv = patch.add_value(name, g.value(src).dtype, shape.map(Shape));
                    let attrs = BTreeMap::from([("perm".to_string(), Attr::Ints(perm))]);
                    patch.add_node(make_node(
                        &derived_name(n, "_k"),
                        "",
                        "Transpose",
                        m.transpose_opset,
                        vec![Some(src)],
                        vec![Some(kv)],
                        attrs,
                    ));
                    (kv, 0)
                }
            };
            let mut attrs = BTreeMap::from([("k_transposed".to_string(), Attr::Int(k_transposed))]);
            if m.scale != 1.0 {
                attrs.insert("scale".into(), Attr::Float(m.scale as f32));
            }
            let inputs = vec![Some(m.q), Some(k), Some(m.v), m.mask];
            patch.add_node(make_node(&n.name, "kiln", "Attention", 1, inputs, vec![Some(m.out)], attrs));
            for k in &m.nodes {
                patch.remove_node(*k);
                claimed.insert(*k);
            }
            done.push(n.label());
        }
        if done.is_empty() {
            return Ok(None);
        }
        let more = if done.len() > 3 { format!(" and {} more", done.len() - 3) } else { String::new() };
        patch.description = format!("fuse attention at {}{more}", done.iter().take(3).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

enum KSource {
    /// K' as the product read it: already (.., d, m).
    Given(ValueId),
    /// K in (.., m, d) layout.
    Plain(ValueId),
    /// K is Transpose(src, perm), to be written.
    Permute(ValueId, Vec<i64>),
}

struct Match {
    q: ValueId,
    k: KSource,
    v: ValueId,
    mask: Option<ValueId>,
    scale: f64,
    out: ValueId,
    transpose_opset: i64,
    /// The nodes reading Q and (when K' was a Transpose) K's source, inside the match.
    q_reader: NodeId,
    k_reader: Option<NodeId>,
    nodes: Vec<NodeId>,
}

/// Whether the Softmax works on the last axis (the only one the fused op knows).
fn softmax_on_last_axis(view: &View, sm: &Node) -> bool {
    let rank = input(sm, 0).and_then(|x| view.rank(x)).map(|r| r as i64);
    let default = if sm.opset < 13 { 1 } else { -1 };
    match sm.attr_int("axis").unwrap_or(default) {
        -1 => true,
        a => rank.is_some_and(|r| a == r - 1 || a == -1),
    }
}

/// Whether `v`, read by `reader` alone, is a MatMul's output after constant scales only.
fn leads_to_scores(view: &View, mut v: ValueId, mut reader: NodeId) -> bool {
    loop {
        if view.sole_reader(v).is_none_or(|(r, _)| r != reader) {
            return false;
        }
        let Some((id, n)) = view.producer(v) else { return false };
        if is_op(n, "MatMul") {
            return true;
        }
        let next = if is_op(n, "Div") && input(n, 1).is_some_and(|c| view.scalar(c).is_some()) {
            input(n, 0)
        } else if is_op(n, "Mul") {
            split_const(view, n).filter(|(_, c, _)| view.scalar(*c).is_some()).map(|(x, _, _)| x)
        } else {
            None
        };
        let Some(next) = next else { return false };
        v = next;
        reader = id;
    }
}

fn match_attention(view: &View, sm_id: NodeId) -> Option<Match> {
    let sm = view.node(sm_id);
    if !softmax_on_last_axis(view, sm) {
        return None;
    }
    let (pv_id, pv) = view.sole_reader(output(sm, 0)?)?;
    if !is_op(pv, "MatMul") || input(pv, 0)? != output(sm, 0)? {
        return None;
    }
    let mut nodes = vec![sm_id, pv_id];
    let mut scale = 1.0;
    let mut mask = None;
    // Walk back from the Softmax input to the scores product.
    let mut s = input(sm, 0)?;
    let mut reader = sm_id;
    let mm = loop {
        if view.sole_reader(s)?.0 != reader {
            return None;
        }
        let (id, n) = view.producer(s)?;
        if is_op(n, "MatMul") {
            break (id, n);
        }
        nodes.push(id);
        reader = id;
        if is_op(n, "Add") && mask.is_none() && scale == 1.0 {
            // The mask is the side that is not the scores chain.
            let (a, b) = (input(n, 0)?, input(n, 1)?);
            let (chain, m) = if leads_to_scores(view, a, id) {
                (a, b)
            } else if leads_to_scores(view, b, id) {
                (b, a)
            } else {
                return None;
            };
            mask = Some(m);
            s = chain;
        } else if is_op(n, "Div") {
            scale /= view.scalar(input(n, 1)?)?;
            s = input(n, 0)?;
        } else if is_op(n, "Mul") {
            let (x, c, _) = split_const(view, n)?;
            scale *= view.scalar(c)?;
            s = x;
        } else {
            return None;
        }
    };
    let (mm_id, mm_node) = mm;
    nodes.push(mm_id);
    let (mut q, kt) = (input(mm_node, 0)?, input(mm_node, 1)?);
    let mut q_reader = mm_id;
    // A constant scale on Q before the product.
    if let Some((qs_id, qs)) = view.producer_op(q, "Mul")
        && view.sole_reader(q).is_some_and(|(r, _)| r == mm_id)
        && let Some((x, c, _)) = split_const(view, qs)
        && let Some(c) = view.scalar(c)
    {
        scale *= c;
        q = x;
        q_reader = qs_id;
        nodes.push(qs_id);
    }
    let mut transpose_opset = 1;
    let mut k_reader = None;
    let k = match view.producer_op(kt, "Transpose") {
        Some((t_id, t)) if view.sole_reader(kt).is_some_and(|(r, _)| r == mm_id) && t.attr_ints("perm").is_some_and(|p| p.len() >= 2) => {
            let mut perm = t.attr_ints("perm")?.to_vec();
            let r = perm.len();
            perm.swap(r - 2, r - 1);
            nodes.push(t_id);
            k_reader = Some(t_id);
            transpose_opset = t.opset;
            if perm.iter().enumerate().all(|(i, &a)| a == i as i64) {
                KSource::Plain(input(t, 0)?)
            } else {
                KSource::Permute(input(t, 0)?, perm)
            }
        }
        _ => KSource::Given(kt),
    };
    if !scale.is_finite() {
        return None;
    }
    Some(Match { q, k, v: input(pv, 1)?, mask, scale, out: output(pv, 0)?, transpose_opset, q_reader, k_reader, nodes })
}

/// The op with Q, K, V read as `[b, s, h*d]` and the output written as `[b, n, h*dv]`: the
/// Reshape/Transpose nodes splitting the projections into heads and merging them back, absorbed.
struct Heads {
    q: ValueId,
    k: ValueId,
    v: ValueId,
    heads: usize,
    /// The merged `[b, n, h*dv]` value (the fused op's output now).
    out: ValueId,
    /// The `[b, n, h, dv]` value before the merge, whose Shape readers move to `out`.
    merged: ValueId,
    /// Those Shape readers' outputs (rank-3 shapes after the move).
    shape_reads: Vec<ValueId>,
    nodes: Vec<NodeId>,
}

const HEADS_PERM: [i64; 4] = [0, 2, 1, 3];

fn heads_layout(view: &View, m: &Match) -> Option<Heads> {
    let (q, hq, qn) = heads_of(view, m.q, m.q_reader)?;
    let (k, hk, kn) = match (&m.k, m.k_reader) {
        (KSource::Permute(src, perm), Some(r)) if perm.as_slice() == HEADS_PERM => {
            let (k, h, id) = split_heads(view, *src, r)?;
            (k, h, vec![id])
        }
        (KSource::Plain(k), Some(r)) => {
            let (k, h, ids) = heads_of(view, *k, r)?;
            (k, h, ids.to_vec())
        }
        _ => return None,
    };
    let (v, hv, vn) = heads_of(view, m.v, *m.nodes.get(1)?)?;
    let (out, merged, ho, shape_reads, on) = merged_output(view, m.out)?;
    if hq != hk || hq != hv || hq != ho {
        return None;
    }
    let nodes = qn.into_iter().chain(kn).chain(vn).chain(on).collect();
    Some(Heads { q, k, v, heads: hq, out, merged, shape_reads, nodes })
}

/// `x4 = Reshape(z)` splitting the last axis of `z` `[a, s, h*d]` into `[a, s, h, d]`, read by
/// `reader` alone: (z, h, the Reshape).
fn split_heads(view: &View, x4: ValueId, reader: NodeId) -> Option<(ValueId, usize, NodeId)> {
    let (id, n) = view.producer_op(x4, "Reshape")?;
    let z = input(n, 0)?;
    if view.sole_reader(x4)?.0 != reader || input(n, 1) == Some(z) {
        return None;
    }
    let [a, s, Dim::Known(c)] = view.shape(z)?.0.as_slice() else { return None };
    let [a4, s4, Dim::Known(h), Dim::Known(d)] = view.shape(x4)?.0.as_slice() else { return None };
    (a == a4 && s == s4 && *h > 0 && h * d == *c).then_some((z, *h, id))
}

/// `x = Transpose(Reshape(z), [0, 2, 1, 3])` read by `reader` alone: the `[a, h, s, d]` heads
/// of `z` `[a, s, h*d]`.
fn heads_of(view: &View, x: ValueId, reader: NodeId) -> Option<(ValueId, usize, [NodeId; 2])> {
    let (t_id, t) = view.producer_op(x, "Transpose")?;
    if view.sole_reader(x)?.0 != reader || t.attr_ints("perm")? != HEADS_PERM {
        return None;
    }
    let (z, h, r_id) = split_heads(view, input(t, 0)?, t_id)?;
    Some((z, h, [t_id, r_id]))
}

/// (the merged value, the value before the merge, heads, Shape outputs, nodes).
type Merged = (ValueId, ValueId, usize, Vec<ValueId>, [NodeId; 2]);

/// The output `o` `[a, h, n, dv]` merged back: `t = Transpose(o, [0, 2, 1, 3])` read by one
/// Reshape to `[a, n, h*dv]` and otherwise only by Shape nodes whose dims 0 and 1 alone are
/// read (by Gather). Gives (the Reshape's output, t, h, the Shape outputs, the two nodes).
fn merged_output(view: &View, o: ValueId) -> Option<Merged> {
    let (t_id, tn) = view.sole_reader(o)?;
    let t = output(tn, 0)?;
    if !is_op(tn, "Transpose") || tn.attr_ints("perm")? != HEADS_PERM || view.pinned(t) {
        return None;
    }
    let (mut reshape, mut shapes) = (None, Vec::new());
    for &(r_id, slot) in view.readers(t) {
        let rn = view.node(r_id);
        if is_op(rn, "Reshape") && slot == 0 && reshape.is_none() {
            reshape = Some((r_id, output(rn, 0)?));
        } else if is_op(rn, "Shape") && reads_leading_dims(view, rn) {
            shapes.push(output(rn, 0)?);
        } else {
            return None;
        }
    }
    let (r_id, r) = reshape?;
    let [a, n, Dim::Known(h), Dim::Known(dv)] = view.shape(t)?.0.as_slice() else { return None };
    let [a2, n2, Dim::Known(c)] = view.shape(r)?.0.as_slice() else { return None };
    (a == a2 && n == n2 && *h > 0 && h * dv == *c).then_some((r, t, *h, shapes, [t_id, r_id]))
}

/// A Shape node over a whole value whose output only Gathers (axis 0) at constant indices 0
/// or 1 read: it gives the same answers on any value with the same two leading dims.
fn reads_leading_dims(view: &View, sn: &Node) -> bool {
    let Some(s) = output(sn, 0) else { return false };
    if sn.attrs.contains_key("start") || sn.attrs.contains_key("end") || view.pinned(s) {
        return false;
    }
    view.readers(s).iter().all(|&(g_id, slot)| {
        let gn = view.node(g_id);
        let idx = input(gn, 1).and_then(|i| view.constant(i)).and_then(|t| t.to_f64_vec().ok());
        is_op(gn, "Gather")
            && slot == 0
            && gn.attr_int("axis").unwrap_or(0) == 0
            && idx.is_some_and(|v| v.iter().all(|&i| i == 0.0 || i == 1.0))
    })
}
