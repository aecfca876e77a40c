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
    // A constant scale on Q before the product.
    if let Some((qs_id, qs)) = view.producer_op(q, "Mul")
        && view.sole_reader(q).is_some_and(|(r, _)| r == mm_id)
        && let Some((x, c, _)) = split_const(view, qs)
        && let Some(c) = view.scalar(c)
    {
        scale *= c;
        q = x;
        nodes.push(qs_id);
    }
    let mut transpose_opset = 1;
    let k = match view.producer_op(kt, "Transpose") {
        Some((t_id, t)) if view.sole_reader(kt).is_some_and(|(r, _)| r == mm_id) && t.attr_ints("perm").is_some_and(|p| p.len() >= 2) => {
            let mut perm = t.attr_ints("perm")?.to_vec();
            let r = perm.len();
            perm.swap(r - 2, r - 1);
            nodes.push(t_id);
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
    Some(Match { q, k, v: input(pv, 1)?, mask, scale, out: output(pv, 0)?, transpose_opset, nodes })
}
