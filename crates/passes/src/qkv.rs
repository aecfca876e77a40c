//! One GEMM for an attention's Q, K and V projections:
//!
//! ```text
//! Q = FusedMatMul(x, Wq, bq)   K = FusedMatMul(x, Wk, bk)   V = FusedMatMul(x, Wv, bv)
//! y = kiln::Attention(Q, K, V, mask) {num_heads}
//! ```
//! becomes `QKV = FusedMatMul(x, [Wq | Wk | Wv], [bq | bk | bv])` and
//! `y = kiln::Attention(QKV, _, _, mask) {num_heads}`, which reads Q, K and V as the three
//! column ranges of `QKV` (`[b, s, 3n]`) in place. Each column of a product depends only on
//! its own column of the weights and bias, so the result is the same to the last bit.
//!
//! Conditions: the three products read the same `x`, have constant f32 2-D weights of equal
//! width and constant 1-D biases (or none), the same attributes (no Gemm transposes or
//! scales), and the attention alone reads their outputs. Weights and biases no other node
//! reads are dropped. The pass runs after the cleanup, when the Shape nodes that read the
//! projections before the attention fusion absorbed the head splits are gone.

use crate::util::{View, derived_name, input, make_node, output};
use crate::{Pass, PassError};
use kiln_ir::{Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{DType, Dim, Shape, Tensor};

pub struct FuseQkv;

impl Pass for FuseQkv {
    fn name(&self) -> &'static str {
        "fuse-qkv"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut patch = GraphPatch::new(g, "");
        let mut done = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            if !is_kiln(n, "Attention") || n.attr_int("num_heads").is_none() || n.attr_int("k_transposed").unwrap_or(0) != 0 {
                continue;
            }
            let Some(p) = projections(&view, NodeId(i), n) else { continue };
            let Some((w, b)) = concatenated(&view, &p) else { continue };
            let (q_node, x) = (view.node(p.nodes[0]), p.x);
            let q_out = g.value(p.outs[0]);
            let width = w.shape()[1];
            let shape = q_out.shape.as_ref().map(|s| {
                let mut d = s.0.clone();
                if let Some(last) = d.last_mut() {
                    *last = Dim::Known(width);
                }
                Shape(d)
            });
            let qkv = patch.add_value(format!("{}_qkv", q_out.name), q_out.dtype, shape);
            let wv = patch.add_constant(format!("{}_qkv", g.value(p.weights[0]).name), w);
            let bv = match (b, p.biases[0]) {
                (Some(b), Some(first)) => Some(patch.add_constant(format!("{}_qkv", g.value(first).name), b)),
                _ => None,
            };
            let attrs = q_node.attrs.clone();
            patch.add_node(make_node(
                &derived_name(q_node, "_qkv"),
                "kiln",
                "FusedMatMul",
                q_node.opset,
                vec![Some(x), Some(wv), bv],
                vec![Some(qkv)],
                attrs,
            ));
            let mut attn = n.clone();
            attn.inputs = vec![Some(qkv), None, None, input(n, 3)];
            while attn.inputs.last().is_some_and(Option::is_none) {
                attn.inputs.pop();
            }
            patch.add_node(attn);
            patch.remove_node(NodeId(i));
            for (k, id) in p.nodes.iter().enumerate() {
                patch.remove_node(*id);
                for c in [Some(p.weights[k]), p.biases[k]].into_iter().flatten() {
                    if view.readers(c).len() == 1 && !view.pinned(c) {
                        patch.remove_initializer(c);
                    }
                }
            }
            done.push(n.label());
        }
        if done.is_empty() {
            return Ok(None);
        }
        let more = if done.len() > 3 { format!(" and {} more", done.len() - 3) } else { String::new() };
        patch.description =
            format!("one Q, K, V product for attention {}{more}", done.iter().take(3).cloned().collect::<Vec<_>>().join(", "));
        Ok(Some(patch))
    }
}

fn is_kiln(n: &Node, op: &str) -> bool {
    n.domain == "kiln" && n.op_type == op && n.unsupported.is_none()
}

/// The three projections feeding an attention's Q, K and V.
struct Projections {
    x: ValueId,
    nodes: [NodeId; 3],
    outs: [ValueId; 3],
    weights: [ValueId; 3],
    biases: [Option<ValueId>; 3],
}

fn projections(view: &View, attn: NodeId, n: &Node) -> Option<Projections> {
    let outs = [input(n, 0)?, input(n, 1)?, input(n, 2)?];
    let mut nodes = Vec::with_capacity(3);
    for o in outs {
        let (id, p) = view.producer(o).filter(|(_, p)| is_kiln(p, "FusedMatMul"))?;
        let gemm_attrs = ["transA", "transB", "alpha", "beta"];
        if view.sole_reader(o)?.0 != attn || gemm_attrs.iter().any(|k| p.attrs.contains_key(*k)) || p.inputs.len() > 3 {
            return None;
        }
        nodes.push((id, p));
    }
    let (x, attrs, opset) = (input(nodes[0].1, 0)?, &nodes[0].1.attrs, nodes[0].1.opset);
    if nodes.iter().any(|(_, p)| input(p, 0) != Some(x) || &p.attrs != attrs || p.opset != opset || output(p, 0).is_none()) {
        return None;
    }
    let weights = [input(nodes[0].1, 1)?, input(nodes[1].1, 1)?, input(nodes[2].1, 1)?];
    let biases = [input(nodes[0].1, 2), input(nodes[1].1, 2), input(nodes[2].1, 2)];
    Some(Projections { x, nodes: [nodes[0].0, nodes[1].0, nodes[2].0], outs, weights, biases })
}

/// `[Wq | Wk | Wv]` `[k, 3n]` and `[bq | bk | bv]` `[3n]` (None without biases), when every
/// weight is a constant f32 `[k, n]` of one `k` and `n` and every bias a constant f32 `[n]`.
fn concatenated(view: &View, p: &Projections) -> Option<(Tensor, Option<Tensor>)> {
    let ws: Vec<&Tensor> = p.weights.iter().map(|&w| view.constant(w)).collect::<Option<_>>()?;
    let [rows, cols] = *ws[0].shape() else { return None };
    if ws.iter().any(|w| w.dtype() != DType::F32 || w.shape() != [rows, cols]) {
        return None;
    }
    let data: Vec<&[f32]> = ws.iter().map(|w| w.as_slice::<f32>().ok()).collect::<Option<_>>()?;
    let mut w = Vec::with_capacity(3 * rows * cols);
    for r in 0..rows {
        for d in &data {
            w.extend_from_slice(&d[r * cols..][..cols]);
        }
    }
    let w = Tensor::from_vec(vec![rows, 3 * cols], w).ok()?;
    let b = match p.biases {
        [None, None, None] => None,
        [Some(a), Some(b), Some(c)] => {
            let bs: Vec<&Tensor> = [a, b, c].iter().map(|&v| view.constant(v)).collect::<Option<_>>()?;
            if bs.iter().any(|t| t.dtype() != DType::F32 || t.shape() != [cols]) {
                return None;
            }
            let all: Vec<f32> = bs.iter().map(|t| t.as_slice::<f32>().ok()).collect::<Option<Vec<_>>>()?.concat();
            Some(Tensor::from_vec(vec![3 * cols], all).ok()?)
        }
        _ => return None,
    };
    Some((w, b))
}
