//! Transpose / reshape simplification: consecutive Transposes compose (and vanish when the
//! composition is the identity); a Reshape of a Reshape, Flatten, Squeeze or Unsqueeze reads
//! the original tensor; Squeeze/Unsqueeze pairs on the same axes cancel.
//!
//! Each rewrite replaces a node by one computing the same value from earlier values, so the
//! rewrites of one round are independent; the node it bypassed is left to dead-code removal.

use crate::util::{View, axes_of, input, is_op, output};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};

pub struct SimplifyLayout;

enum Rewrite {
    /// The node's output is this earlier value.
    Bypass(ValueId),
    /// The node becomes this one (same output).
    Replace(Node),
}

impl Pass for SimplifyLayout {
    fn name(&self) -> &'static str {
        "simplify-layout"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut patch = GraphPatch::new(g, "");
        let mut done: Vec<String> = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let Some(out) = output(n, 0) else { continue };
            let rewrite = if is_op(n, "Transpose") {
                transpose_of_transpose(&view, n)
            } else if is_op(n, "Reshape") {
                reshape_of_reshape(&view, n)
            } else if is_op(n, "Squeeze") || is_op(n, "Unsqueeze") {
                squeeze_pair(&view, n)
            } else {
                None
            };
            match rewrite {
                Some(Rewrite::Bypass(src)) => {
                    if g.outputs.contains(&out) && (g.inputs.contains(&src) || g.outputs.contains(&src)) {
                        continue;
                    }
                    patch.replace_uses(out, src);
                    patch.remove_node(NodeId(i));
                    done.push(format!("cancel {} '{}'", n.op_type, n.label()));
                }
                Some(Rewrite::Replace(new)) => {
                    patch.remove_node(NodeId(i));
                    patch.add_node(new);
                    done.push(format!("shorten {} '{}'", n.op_type, n.label()));
                }
                None => {}
            }
        }
        if done.is_empty() {
            return Ok(None);
        }
        let more = if done.len() > 4 { format!(" and {} more", done.len() - 4) } else { String::new() };
        patch.description = format!("{}{more}", done.iter().take(4).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

fn perm_of(view: &View, n: &Node) -> Option<Vec<i64>> {
    match n.attr_ints("perm") {
        Some(p) => Some(p.to_vec()),
        None => view.rank(input(n, 0)?).map(|r| (0..r as i64).rev().collect()),
    }
}

/// Transpose(Transpose(x, p1), p2) = Transpose(x, q) with q[i] = p1[p2[i]].
fn transpose_of_transpose(view: &View, n: &Node) -> Option<Rewrite> {
    let (_, inner) = view.producer_op(input(n, 0)?, "Transpose")?;
    let (p1, p2) = (perm_of(view, inner)?, perm_of(view, n)?);
    if p1.len() != p2.len() {
        return None;
    }
    let q: Vec<i64> = p2.iter().map(|&i| usize::try_from(i).ok().and_then(|i| p1.get(i).copied())).collect::<Option<_>>()?;
    let x = input(inner, 0)?;
    if q.iter().enumerate().all(|(i, &a)| a == i as i64) {
        return Some(Rewrite::Bypass(x));
    }
    let mut new = n.clone();
    new.inputs[0] = Some(x);
    new.attrs.insert("perm".into(), Attr::Ints(q));
    Some(Rewrite::Replace(new))
}

/// Reshape(R(x), s) = Reshape(x, s) for R a Reshape, Flatten, Squeeze or Unsqueeze, when the
/// target `s` is a constant without 0 entries (a 0 would copy a dim of R's output).
fn reshape_of_reshape(view: &View, n: &Node) -> Option<Rewrite> {
    let (_, inner) = view.producer(input(n, 0)?)?;
    if !["Reshape", "Flatten", "Squeeze", "Unsqueeze"].iter().any(|op| is_op(inner, op)) {
        return None;
    }
    let target = view.constant(input(n, 1)?)?.to_i64_vec().ok()?;
    if target.contains(&0) && n.attr_int("allowzero").unwrap_or(0) == 0 {
        return None;
    }
    let mut new = n.clone();
    new.inputs[0] = Some(input(inner, 0)?);
    Some(Rewrite::Replace(new))
}

/// Unsqueeze(Squeeze(x, a), a) = x and Squeeze(Unsqueeze(x, a), a) = x.
fn squeeze_pair(view: &View, n: &Node) -> Option<Rewrite> {
    let other = if n.op_type == "Squeeze" { "Unsqueeze" } else { "Squeeze" };
    let (_, inner) = view.producer_op(input(n, 0)?, other)?;
    let x = input(inner, 0)?;
    let (a_outer, a_inner) = (axes_of(view, n)?, axes_of(view, inner)?);
    if a_outer.is_empty() || a_inner.is_empty() {
        return None;
    }
    // Both axis lists index the tensor of higher rank: the squeezed one's input.
    let mid = input(n, 0)?;
    let big_rank = if n.op_type == "Squeeze" { view.rank(mid) } else { view.rank(x) }.map(|r| r as i64);
    let norm = |axes: &[i64]| -> Option<Vec<i64>> {
        let mut v: Vec<i64> = axes.iter().map(|&a| if a >= 0 { Some(a) } else { big_rank.map(|r| a + r) }).collect::<Option<_>>()?;
        v.sort_unstable();
        Some(v)
    };
    (norm(&a_outer)? == norm(&a_inner)?).then_some(Rewrite::Bypass(x))
}
