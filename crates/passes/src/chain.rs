//! Runs of elementwise ops on one value become `kiln::Chain(x, operands...)`, so a target can
//! apply them in one pass over memory instead of one pass per op:
//!
//! ```text
//! y = Add(Mul(HardSwish(x), s), b)   ->   y = kiln::Chain(x, s, b; ops=[HardSwish, Mul, Add])
//! ```
//! A run grows while the running value has exactly one reader, that reader is a supported
//! f32 elementwise op, and its output has the running value's shape (the other operand
//! broadcasts into it; it never widens the value). Both inputs being the running value ends
//! the run. Runs of one op are left alone.

use crate::util::{View, input, make_node, output};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{DType, Dim};
use std::collections::{BTreeMap, HashSet};

pub struct FuseElementwise;

pub(crate) const BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Max", "Min"];
pub(crate) const UNARY: &[&str] = &["Relu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "LeakyRelu", "Clip", "Gelu", "Neg", "Abs", "Sqrt", "Exp", "Log", "Reciprocal"];

/// One op of a chain: (name in `ops`, operand value, swap, alpha, beta).
type Link = (String, Option<ValueId>, bool, f32, f32);

impl Pass for FuseElementwise {
    fn name(&self) -> &'static str {
        "fuse-elementwise"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let order = g.topo_order()?;
        let mut patch = GraphPatch::new(g, "");
        let mut claimed: HashSet<NodeId> = HashSet::new();
        let mut made = Vec::new();
        for id in order {
            if claimed.contains(&id) {
                continue;
            }
            let head = view.node(id);
            let Some((x, first)) = start(&view, head) else { continue };
            let Some(shape) = f32_shape(g, output(head, 0)) else { continue };
            let (mut links, mut nodes, mut cur) = (vec![first], vec![id], output(head, 0));
            while let Some(v) = cur {
                let Some((nid, next)) = view.sole_reader(v) else { break };
                if claimed.contains(&nid) || f32_shape(g, output(next, 0)).as_ref() != Some(&shape) {
                    break;
                }
                let Some(link) = link(&view, next, v) else { break };
                links.push(link);
                nodes.push(nid);
                cur = output(next, 0);
            }
            if links.len() < 2 {
                continue;
            }
            let Some(out) = cur else { continue };
            let mut inputs = vec![Some(x)];
            let mut operands = Vec::new();
            for (_, operand, _, _, _) in &links {
                operands.push(match operand {
                    None => -1,
                    Some(o) => {
                        inputs.push(Some(*o));
                        inputs.len() as i64 - 1
                    }
                });
            }
            let attrs = BTreeMap::from([
                ("ops".to_string(), Attr::Strings(links.iter().map(|l| l.0.as_bytes().to_vec()).collect())),
                ("operands".to_string(), Attr::Ints(operands)),
                ("swap".to_string(), Attr::Ints(links.iter().map(|l| i64::from(l.2)).collect())),
                ("alpha".to_string(), Attr::Floats(links.iter().map(|l| l.3).collect())),
                ("beta".to_string(), Attr::Floats(links.iter().map(|l| l.4).collect())),
            ]);
            patch.add_node(make_node(&head.name, "kiln", "Chain", 1, inputs, vec![Some(out)], attrs));
            for n in &nodes {
                patch.remove_node(*n);
                claimed.insert(*n);
            }
            made.push(format!("{} ({})", head.label(), links.iter().map(|l| l.0.as_str()).collect::<Vec<_>>().join(", ")));
        }
        if made.is_empty() {
            return Ok(None);
        }
        let more = if made.len() > 3 { format!(" and {} more", made.len() - 3) } else { String::new() };
        patch.description = format!("chain elementwise ops at {}{more}", made.iter().take(3).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

/// The shape of `v` when it is a known-rank f32 value.
fn f32_shape(g: &Graph, v: Option<ValueId>) -> Option<Vec<Dim>> {
    let info = g.value(v?);
    (info.dtype == Some(DType::F32)).then(|| info.shape.as_ref().map(|s| s.0.clone()))?
}

/// A chain can start at `n` from the input that has `n`'s output shape: (that input, link).
fn start(view: &View, n: &Node) -> Option<(ValueId, Link)> {
    let shape = f32_shape(view.g, output(n, 0))?;
    for k in 0..2 {
        let v = input(n, k)?;
        if f32_shape(view.g, Some(v)).as_ref() == Some(&shape) {
            return Some((v, link(view, n, v)?));
        }
        if !BINARY.contains(&n.op_type.as_str()) {
            break;
        }
    }
    None
}

/// `n` as a link applied to the running value `v`.
fn link(view: &View, n: &Node, v: ValueId) -> Option<Link> {
    if !(n.domain.is_empty() && n.unsupported.is_none() && n.outputs.iter().flatten().count() == 1) {
        return None;
    }
    let op = n.op_type.as_str();
    if BINARY.contains(&op) {
        let (a, b) = (input(n, 0)?, input(n, 1)?);
        if n.inputs.len() != 2 || a == b || f32_shape(view.g, Some(if a == v { b } else { a })).is_none() {
            return None;
        }
        return match (a == v, b == v) {
            (true, false) => Some((op.to_string(), Some(b), false, 0.0, 0.0)),
            (false, true) => Some((op.to_string(), Some(a), true, 0.0, 0.0)),
            _ => None,
        };
    }
    if !UNARY.contains(&op) || input(n, 0) != Some(v) {
        return None;
    }
    Some(match op {
        "HardSigmoid" => (op.to_string(), None, false, n.attr_float("alpha").unwrap_or(0.2), n.attr_float("beta").unwrap_or(0.5)),
        "LeakyRelu" => (op.to_string(), None, false, n.attr_float("alpha").unwrap_or(0.01), 0.0),
        "Clip" => {
            let (lo, hi) = if n.opset < 11 {
                (n.attr_float("min").unwrap_or(f32::NEG_INFINITY), n.attr_float("max").unwrap_or(f32::INFINITY))
            } else {
                let bound = |i: usize, default: f32| -> Option<f32> {
                    match input(n, i) {
                        None => Some(default),
                        Some(c) => view.scalar(c).map(|x| x as f32),
                    }
                };
                (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
            };
            (op.to_string(), None, false, lo, hi)
        }
        "Gelu" => match n.attr_str("approximate").unwrap_or("none") {
            "none" => (op.to_string(), None, false, 0.0, 0.0),
            "tanh" => ("GeluTanh".to_string(), None, false, 0.0, 0.0),
            _ => return None,
        },
        _ => (op.to_string(), None, false, 0.0, 0.0),
    })
}
