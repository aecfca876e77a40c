//! HardSwish patterns become `HardSwish(x)` (ai.onnx opset 14, or the graph's own if newer):
//!
//! ```text
//! x * Clip(x + 3, 0, 6) / 6      (the division as Div by 6 or Mul by 1/6, before or after
//!                                 the product; the Clip bounds as inputs or attributes)
//! x * HardSigmoid(x, alpha=1/6, beta=0.5)
//! ```
//! Every intermediate value must be read by the next op of the pattern alone.

use crate::util::{View, input, is_op, make_node, near, onnx_opset, output, split_const};
use crate::{Pass, PassError};
use kiln_ir::{Graph, GraphPatch, Node, NodeId, ValueId};
use std::collections::{BTreeMap, HashSet};

pub struct FuseHardSwish;

impl Pass for FuseHardSwish {
    fn name(&self) -> &'static str {
        "fuse-hardswish"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut patch = GraphPatch::new(g, "");
        let mut claimed: HashSet<NodeId> = HashSet::new();
        let mut done = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let found = if is_op(n, "Clip") {
                clip_form(&view, NodeId(i))
            } else if is_op(n, "HardSigmoid") {
                hard_sigmoid_form(&view, NodeId(i))
            } else {
                None
            };
            let Some((x, out, nodes)) = found else { continue };
            if nodes.iter().any(|k| claimed.contains(k)) {
                continue;
            }
            patch.add_node(make_node(&n.name, "", "HardSwish", onnx_opset(n, 14), vec![Some(x)], vec![Some(out)], BTreeMap::new()));
            for k in nodes {
                patch.remove_node(k);
                claimed.insert(k);
            }
            done.push(n.label());
        }
        if done.is_empty() {
            return Ok(None);
        }
        let more = if done.len() > 3 { format!(" and {} more", done.len() - 3) } else { String::new() };
        patch.description = format!("fuse HardSwish patterns at {}{more}", done.iter().take(3).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

/// (x, output, nodes of the pattern)
type Match = (ValueId, ValueId, Vec<NodeId>);

/// For a binary node with a constant side: (other input, constant value).
fn with_const(view: &View, n: &Node) -> Option<(ValueId, f64)> {
    let (x, c, _) = split_const(view, n)?;
    Some((x, view.scalar(c)?))
}

/// Whether `n` divides its first input by 6 (Div by 6, or Mul by 1/6).
fn sixth(view: &View, n: &Node, v: ValueId) -> bool {
    if is_op(n, "Div") {
        return input(n, 0) == Some(v) && input(n, 1).and_then(|c| view.scalar(c)).is_some_and(|c| c == 6.0);
    }
    is_op(n, "Mul") && with_const(view, n).is_some_and(|(x, c)| x == v && near(c, 1.0 / 6.0))
}

/// Whether `n` multiplies `v` by `x`.
fn times(n: &Node, v: ValueId, x: ValueId) -> bool {
    is_op(n, "Mul") && matches!((input(n, 0), input(n, 1)), (Some(a), Some(b)) if (a, b) == (v, x) || (a, b) == (x, v))
}

fn clip_bounds(view: &View, clip: &Node) -> Option<(f64, f64)> {
    if clip.opset < 11 {
        return Some((f64::from(clip.attr_float("min")?), f64::from(clip.attr_float("max")?)));
    }
    Some((view.scalar(input(clip, 1)?)?, view.scalar(input(clip, 2)?)?))
}

fn clip_form(view: &View, clip_id: NodeId) -> Option<Match> {
    let clip = view.node(clip_id);
    if clip_bounds(view, clip)? != (0.0, 6.0) {
        return None;
    }
    let (add_id, add) = view.producer_op(input(clip, 0)?, "Add")?;
    if view.sole_reader(output(add, 0)?)?.0 != clip_id {
        return None;
    }
    let (x, three) = with_const(view, add)?;
    if three != 3.0 {
        return None;
    }
    let c = output(clip, 0)?;
    let (first_id, first) = view.sole_reader(c)?;
    let mid = output(first, 0)?;
    let (second_id, second) = view.sole_reader(mid)?;
    let ok = (times(first, c, x) && sixth(view, second, mid)) || (sixth(view, first, c) && times(second, mid, x));
    if !ok {
        return None;
    }
    Some((x, output(second, 0)?, vec![add_id, clip_id, first_id, second_id]))
}

fn hard_sigmoid_form(view: &View, hs_id: NodeId) -> Option<Match> {
    let hs = view.node(hs_id);
    let (alpha, beta) = (f64::from(hs.attr_float("alpha").unwrap_or(0.2)), f64::from(hs.attr_float("beta").unwrap_or(0.5)));
    if !near(alpha, 1.0 / 6.0) || !near(beta, 0.5) {
        return None;
    }
    let x = input(hs, 0)?;
    let h = output(hs, 0)?;
    let (m_id, m) = view.sole_reader(h)?;
    times(m, h, x).then_some(())?;
    Some((x, output(m, 0)?, vec![hs_id, m_id]))
}
