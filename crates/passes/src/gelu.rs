//! GELU patterns become `Gelu(x)` (ai.onnx opset 20, or the graph's own if newer):
//!
//! ```text
//! exact: 1 + Erf(x / sqrt(2))            (or Erf(x * 1/sqrt(2)))
//! tanh:  1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3))    (x^3 as Pow(x, 3) or x * x * x)
//! then:  x * that * 0.5, (x * 0.5) * that, x * (that * 0.5), (x * that) / 2, ... in any order
//! ```
//! Constants match to a relative 1e-4 (exporters round them differently). Every intermediate
//! value must be read by the next op of the pattern alone.

use crate::util::{View, input, is_op, make_node, near, onnx_opset, output, split_const, string_attr};
use crate::{Pass, PassError};
use kiln_ir::{Graph, GraphPatch, Node, NodeId, ValueId};
use std::collections::{BTreeMap, HashSet};

pub struct FuseGelu;

impl Pass for FuseGelu {
    fn name(&self) -> &'static str {
        "fuse-gelu"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut patch = GraphPatch::new(g, "");
        let mut claimed: HashSet<NodeId> = HashSet::new();
        let mut done = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let found = if is_op(n, "Erf") {
                erf_form(&view, NodeId(i)).map(|m| (m, "none"))
            } else if is_op(n, "Tanh") {
                tanh_form(&view, NodeId(i)).map(|m| (m, "tanh"))
            } else {
                None
            };
            let Some(((x, out, nodes), approximate)) = found else { continue };
            if nodes.iter().any(|k| claimed.contains(k)) {
                continue;
            }
            let attrs = BTreeMap::from([("approximate".to_string(), string_attr(approximate))]);
            patch.add_node(make_node(&n.name, "", "Gelu", onnx_opset(n, 20), vec![Some(x)], vec![Some(out)], attrs));
            for k in nodes {
                patch.remove_node(k);
                claimed.insert(k);
            }
            done.push(format!("{} ({approximate})", n.label()));
        }
        if done.is_empty() {
            return Ok(None);
        }
        let more = if done.len() > 3 { format!(" and {} more", done.len() - 3) } else { String::new() };
        patch.description = format!("fuse GELU patterns at {}{more}", done.iter().take(3).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

/// (x, output, nodes of the pattern)
type Match = (ValueId, ValueId, Vec<NodeId>);

/// `v`'s producer when it is `op` and `v` is read by `reader` alone.
fn feeding<'g>(view: &View<'g>, v: ValueId, op: &str, reader: NodeId) -> Option<(NodeId, &'g Node)> {
    let (id, n) = view.producer_op(v, op)?;
    (view.sole_reader(v)?.0 == reader).then_some((id, n))
}

/// For a binary node with a constant side: (other input, constant value).
fn with_const(view: &View, n: &Node) -> Option<(ValueId, f64)> {
    let (x, c, _) = split_const(view, n)?;
    Some((x, view.scalar(c)?))
}

fn erf_form(view: &View, erf_id: NodeId) -> Option<Match> {
    let erf = view.node(erf_id);
    let z = input(erf, 0)?;
    let (scale_id, scale) = view.producer(z)?;
    if view.sole_reader(z)?.0 != erf_id {
        return None;
    }
    let x = if is_op(scale, "Div") {
        let c = view.scalar(input(scale, 1)?)?;
        near(c, std::f64::consts::SQRT_2).then_some(input(scale, 0)?)?
    } else if is_op(scale, "Mul") {
        let (x, c) = with_const(view, scale)?;
        near(c, std::f64::consts::FRAC_1_SQRT_2).then_some(x)?
    } else {
        return None;
    };
    let (out, mut nodes) = one_plus_times_half_x(view, x, erf_id)?;
    nodes.extend([erf_id, scale_id]);
    Some((x, out, nodes))
}

fn tanh_form(view: &View, tanh_id: NodeId) -> Option<Match> {
    let tanh = view.node(tanh_id);
    let (k_id, k) = feeding(view, input(tanh, 0)?, "Mul", tanh_id)?;
    let (inner, kc) = with_const(view, k)?;
    if !near(kc, (2.0 / std::f64::consts::PI).sqrt()) {
        return None;
    }
    let (add_id, add) = feeding(view, inner, "Add", k_id)?;
    let (a, b) = (input(add, 0)?, input(add, 1)?);
    // One side of the Add is x, the other 0.044715 * x^3.
    for (x, cubic) in [(a, b), (b, a)] {
        let Some((c_id, c)) = feeding(view, cubic, "Mul", add_id) else { continue };
        let Some((p, pc)) = with_const(view, c) else { continue };
        if !near(pc, 0.044715) {
            continue;
        }
        let Some(cube_nodes) = cube_of(view, p, x, c_id) else { continue };
        let (out, mut nodes) = one_plus_times_half_x(view, x, tanh_id)?;
        nodes.extend([tanh_id, k_id, add_id, c_id]);
        nodes.extend(cube_nodes);
        return Some((x, out, nodes));
    }
    None
}

/// The nodes computing `p = x^3` (Pow(x, 3), or x * x * x in either association).
fn cube_of(view: &View, p: ValueId, x: ValueId, reader: NodeId) -> Option<Vec<NodeId>> {
    if let Some((id, pow)) = feeding(view, p, "Pow", reader) {
        return (input(pow, 0)? == x && view.scalar(input(pow, 1)?)? == 3.0).then(|| vec![id]);
    }
    let (id, m) = feeding(view, p, "Mul", reader)?;
    let (a, b) = (input(m, 0)?, input(m, 1)?);
    let sq = if a == x {
        b
    } else if b == x {
        a
    } else {
        return None;
    };
    let (sq_id, sqn) = feeding(view, sq, "Mul", id)?;
    (input(sqn, 0)? == x && input(sqn, 1)? == x).then(|| vec![id, sq_id])
}

/// From `t` (the Erf/Tanh node), `1 + t(..)` multiplied by x and 0.5 in some order: the
/// final output and the nodes after `t`.
fn one_plus_times_half_x(view: &View, x: ValueId, t_id: NodeId) -> Option<(ValueId, Vec<NodeId>)> {
    let (one_id, one) = view.sole_reader(output(view.node(t_id), 0)?)?;
    if !is_op(one, "Add") || !near(with_const(view, one)?.1, 1.0) {
        return None;
    }
    let a = output(one, 0)?;
    let (m1_id, m1) = view.sole_reader(a)?;
    if !is_op(m1, "Mul") {
        return None;
    }
    let other = if input(m1, 0)? == a { input(m1, 1)? } else { input(m1, 0)? };
    let m1_out = output(m1, 0)?;
    let half_step = |v: ValueId, with: Option<ValueId>| -> Option<(NodeId, ValueId)> {
        // The reader of v multiplies by 0.5 (or divides by 2), or by `with` when given.
        let (id, n) = view.sole_reader(v)?;
        let ok = match with {
            Some(w) => is_op(n, "Mul") && (input(n, 0)? == w || input(n, 1)? == w),
            None => {
                (is_op(n, "Mul") && near(with_const(view, n)?.1, 0.5))
                    || (is_op(n, "Div") && input(n, 0)? == v && near(view.scalar(input(n, 1)?)?, 2.0))
            }
        };
        ok.then_some((id, output(n, 0)?))
    };
    let mut nodes = vec![one_id, m1_id];
    if other == x {
        let (m2, out) = half_step(m1_out, None)?;
        nodes.push(m2);
        return Some((out, nodes));
    }
    if view.scalar(other).is_some_and(|c| near(c, 0.5)) {
        let (m2, out) = half_step(m1_out, Some(x))?;
        nodes.push(m2);
        return Some((out, nodes));
    }
    // (x * 0.5) * (1 + t)
    let (h_id, h) = feeding(view, other, "Mul", m1_id)?;
    let (hx, hc) = with_const(view, h)?;
    (hx == x && near(hc, 0.5)).then_some(())?;
    nodes.push(h_id);
    Some((m1_out, nodes))
}
