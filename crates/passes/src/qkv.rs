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
//! The same holds for three `kiln::QMatMul` projections of one `x` with the same activation
//! quantization (static parameters or dynamic): one quantization of `x`, one int8 product,
//! weight scales and zero points side by side; and for three `kiln::WMatMul` weight-only
//! projections of one storage type, group size and compute mode (weights, and group-wise
//! scales / zero points, side by side).
//!
//! Conditions: the three products read the same `x`, have constant f32 2-D weights of equal
//! width and constant 1-D biases (or none), the same attributes (no Gemm transposes or
//! scales), and the attention alone reads their outputs. Weights and biases no other node
//! reads are dropped. The pass runs after the cleanup, when the Shape nodes that read the
//! projections before the attention fusion absorbed the head splits are gone.

use crate::util::{View, derived_name, describe, input, make_node, output};
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
            let Some(Concatenated { w, b, quant }) = concatenated(&view, &p) else { continue };
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
            let mut scale_inputs = |scales: Option<Tensor>, zps: Option<Tensor>, first: Option<ValueId>| {
                let sv = match (scales, first) {
                    (Some(t), Some(f)) => Some(patch.add_constant(format!("{}_qkv", g.value(f).name), t)),
                    _ => None,
                };
                let zv = zps.map(|z| patch.add_constant(format!("{}_qkv_zp", g.value(p.weights[0]).name), z));
                (sv, zv)
            };
            let (op, mut inputs) = match (p.kind, quant) {
                (Kind::Int8, Some((scales, zps))) => {
                    let q = p.quant.as_ref().map(|q| (q.x_scale, q.x_zero_point, q.w_scales[0]));
                    let (xs, xz, first) = q.map_or((None, None, None), |(a, b, c)| (a, b, Some(c)));
                    let (sv, zv) = scale_inputs(Some(scales), zps, first);
                    ("QMatMul", vec![Some(x), xs, xz, Some(wv), sv, zv, bv])
                }
                (Kind::Weight, q) => {
                    let first = p.quant.as_ref().map(|q| q.w_scales[0]);
                    let (sv, zv) = match q {
                        Some((scales, zps)) => scale_inputs(Some(scales), zps, first),
                        None => (None, None),
                    };
                    ("WMatMul", vec![Some(x), Some(wv), sv, zv, bv])
                }
                _ => ("FusedMatMul", vec![Some(x), Some(wv), bv]),
            };
            while inputs.last().is_some_and(Option::is_none) {
                inputs.pop();
            }
            patch.add_node(make_node(&derived_name(q_node, "_qkv"), "kiln", op, q_node.opset, inputs, vec![Some(qkv)], attrs));
            let mut attn = n.clone();
            attn.inputs = vec![Some(qkv), None, None, input(n, 3)];
            while attn.inputs.last().is_some_and(Option::is_none) {
                attn.inputs.pop();
            }
            patch.add_node(attn);
            patch.remove_node(NodeId(i));
            for (k, id) in p.nodes.iter().enumerate() {
                patch.remove_node(*id);
                let (scale, zp) = p.quant.as_ref().map_or((None, None), |q| (Some(q.w_scales[k]), q.w_zero_points[k]));
                for c in [Some(p.weights[k]), p.biases[k], scale, zp].into_iter().flatten() {
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
        patch.description = describe("one Q, K, V product for attention ", &done);
        Ok(Some(patch))
    }
}

fn is_kiln(n: &Node, op: &str) -> bool {
    n.domain == "kiln" && n.op_type == op && n.unsupported.is_none()
}

/// Which fused product the projections are.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Float,
    Int8,
    Weight,
}

/// The three projections feeding an attention's Q, K and V.
struct Projections {
    kind: Kind,
    x: ValueId,
    nodes: [NodeId; 3],
    outs: [ValueId; 3],
    weights: [ValueId; 3],
    biases: [Option<ValueId>; 3],
    /// kiln::QMatMul projections: their activation and weight quantization inputs;
    /// kiln::WMatMul ones with integer weights: their weight scales and zero points.
    quant: Option<QuantSlots>,
}

struct QuantSlots {
    x_scale: Option<ValueId>,
    x_zero_point: Option<ValueId>,
    w_scales: [ValueId; 3],
    w_zero_points: [Option<ValueId>; 3],
}

fn projections(view: &View, attn: NodeId, n: &Node) -> Option<Projections> {
    let outs = [input(n, 0)?, input(n, 1)?, input(n, 2)?];
    let first = view.producer(outs[0]);
    let kind = match first {
        Some((_, p)) if is_kiln(p, "QMatMul") => Kind::Int8,
        Some((_, p)) if is_kiln(p, "WMatMul") => Kind::Weight,
        _ => Kind::Float,
    };
    let int8 = kind == Kind::Int8;
    let (op, max_inputs, w_slot, b_slot) = match kind {
        Kind::Int8 => ("QMatMul", 7, 3, 6),
        Kind::Weight => ("WMatMul", 5, 1, 4),
        Kind::Float => ("FusedMatMul", 3, 1, 2),
    };
    let mut nodes = Vec::with_capacity(3);
    for o in outs {
        let (id, p) = view.producer(o).filter(|(_, p)| is_kiln(p, op))?;
        let gemm_attrs = ["transA", "transB", "alpha", "beta"];
        if view.sole_reader(o)?.0 != attn || gemm_attrs.iter().any(|k| p.attrs.contains_key(*k)) || p.inputs.len() > max_inputs {
            return None;
        }
        nodes.push((id, p));
    }
    let (x, attrs, opset) = (input(nodes[0].1, 0)?, &nodes[0].1.attrs, nodes[0].1.opset);
    if nodes.iter().any(|(_, p)| input(p, 0) != Some(x) || &p.attrs != attrs || p.opset != opset || output(p, 0).is_none()) {
        return None;
    }
    // int8: one activation quantization for the three (the same static parameters, or all
    // dynamic: the same tensor gives the same dynamic parameters).
    if int8 && nodes.iter().any(|(_, p)| input(p, 1) != input(nodes[0].1, 1) || input(p, 2) != input(nodes[0].1, 2)) {
        return None;
    }
    let slot = |k: usize| [input(nodes[0].1, k), input(nodes[1].1, k), input(nodes[2].1, k)];
    let [w0, w1, w2] = slot(w_slot);
    let weights = [w0?, w1?, w2?];
    let quant = match kind {
        Kind::Int8 => {
            let [s0, s1, s2] = slot(4);
            Some(QuantSlots {
                x_scale: input(nodes[0].1, 1),
                x_zero_point: input(nodes[0].1, 2),
                w_scales: [s0?, s1?, s2?],
                w_zero_points: slot(5),
            })
        }
        Kind::Weight => match slot(2) {
            [None, None, None] => None,
            [Some(a), Some(b), Some(c)] => Some(QuantSlots { x_scale: None, x_zero_point: None, w_scales: [a, b, c], w_zero_points: slot(3) }),
            _ => return None,
        },
        Kind::Float => None,
    };
    Some(Projections { kind, x, nodes: [nodes[0].0, nodes[1].0, nodes[2].0], outs, weights, biases: slot(b_slot), quant })
}

/// `[Wq | Wk | Wv]` `[k, 3n]`, `[bq | bk | bv]` `[3n]` (None without biases) and, for int8
/// projections, their weight scales and zero points side by side `[3n]` (a per-tensor one
/// repeated over its columns), when every weight is a constant `[k, n]` of one type, `k` and
/// `n`, and every bias a constant f32 `[n]`.
fn concatenated(view: &View, p: &Projections) -> Option<Concatenated> {
    let ws: Vec<&Tensor> = p.weights.iter().map(|&w| view.constant(w)).collect::<Option<_>>()?;
    let [rows, cols] = *ws[0].shape() else { return None };
    let want = match p.kind {
        Kind::Int8 => [DType::I8, DType::U8].as_slice(),
        Kind::Weight => [DType::F16, DType::BF16, DType::I4, DType::U4, DType::I8, DType::U8].as_slice(),
        Kind::Float => [DType::F32].as_slice(),
    };
    if !want.contains(&ws[0].dtype()) || ws.iter().any(|w| w.dtype() != ws[0].dtype() || w.shape() != [rows, cols]) {
        return None;
    }
    let w = side_by_side(&ws, rows, cols)?;
    let b = match p.biases {
        [None, None, None] => None,
        [Some(a), Some(b), Some(c)] => {
            let bs: Vec<&Tensor> = [a, b, c].iter().map(|&v| view.constant(v)).collect::<Option<_>>()?;
            if bs.iter().any(|t| t.dtype() != DType::F32 || t.shape() != [cols]) {
                return None;
            }
            Some(side_by_side(&bs, 1, cols)?.reshape(vec![3 * cols]).ok()?)
        }
        _ => return None,
    };
    let quant = match &p.quant {
        None => None,
        Some(q) => {
            let params = |vs: &[Option<ValueId>; 3], dt: DType| match group_rows(view, vs, cols) {
                Some(rows) => {
                    let ts: Vec<&Tensor> = vs.iter().map(|v| view.constant((*v)?)).collect::<Option<_>>()?;
                    if ts.iter().any(|t| t.dtype() != dt) {
                        return None;
                    }
                    side_by_side(&ts, rows, cols)
                }
                None => per_column(view, vs, cols, dt),
            };
            let scales = params(&q.w_scales.map(Some), DType::F32)?;
            let zps = match q.w_zero_points {
                [None, None, None] => None,
                [Some(_), Some(_), Some(_)] => Some(params(&q.w_zero_points, ws[0].dtype())?),
                _ => return None,
            };
            Some((scales, zps))
        }
    };
    Some(Concatenated { w, b, quant })
}

struct Concatenated {
    w: Tensor,
    b: Option<Tensor>,
    /// int8: weight scales and zero points, `[3n]` each.
    quant: Option<(Tensor, Option<Tensor>)>,
}

/// Row-major `[rows, cols]` tensors of one type side by side: `[rows, 3 * cols]`.
fn side_by_side(ts: &[&Tensor], rows: usize, cols: usize) -> Option<Tensor> {
    fn join<T: Copy>(parts: &[&[T]], rows: usize, cols: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(parts.len() * rows * cols);
        for r in 0..rows {
            for d in parts {
                out.extend_from_slice(&d[r * cols..][..cols]);
            }
        }
        out
    }
    let shape = vec![rows, ts.len() * cols];
    if matches!(ts[0].dtype(), DType::F16 | DType::BF16 | DType::I4 | DType::U4) {
        // Values every f64 holds exactly; the weight-only types, joined once at compile time.
        let vals: Vec<Vec<f64>> = ts.iter().map(|t| t.to_f64_vec().ok()).collect::<Option<_>>()?;
        let parts: Vec<&[f64]> = vals.iter().map(Vec::as_slice).collect();
        return Tensor::new(shape, kiln_tensor::Data::from_f64_vec(ts[0].dtype(), &join(&parts, rows, cols)).ok()?).ok();
    }
    match ts[0].dtype() {
        DType::F32 => {
            Tensor::from_vec(shape, join(&ts.iter().map(|t| t.as_slice::<f32>().ok()).collect::<Option<Vec<_>>>()?, rows, cols)).ok()
        }
        DType::I8 => {
            Tensor::from_vec(shape, join(&ts.iter().map(|t| t.as_slice::<i8>().ok()).collect::<Option<Vec<_>>>()?, rows, cols)).ok()
        }
        DType::U8 => {
            Tensor::from_vec(shape, join(&ts.iter().map(|t| t.as_slice::<u8>().ok()).collect::<Option<Vec<_>>>()?, rows, cols)).ok()
        }
        _ => None,
    }
}

/// The group count of three group-wise (2-D `[groups, cols]`) weight-only parameters, or None
/// when they are not all 2-D of one shape.
fn group_rows(view: &View, vs: &[Option<ValueId>; 3], cols: usize) -> Option<usize> {
    let shapes: Vec<&[usize]> = vs.iter().map(|v| view.constant((*v)?).map(Tensor::shape)).collect::<Option<_>>()?;
    match shapes[0] {
        [rows, c] if *c == cols && shapes.iter().all(|s| *s == shapes[0]) => Some(*rows),
        _ => None,
    }
}

/// Three per-column (or per-tensor) constants of type `dt`, each widened to `[cols]`, side by side.
fn per_column(view: &View, vs: &[Option<ValueId>; 3], cols: usize, dt: DType) -> Option<Tensor> {
    let mut parts = Vec::with_capacity(3);
    for v in vs {
        let t = view.constant((*v)?)?;
        if t.dtype() != dt || !(t.len() == 1 || (t.rank() == 1 && t.len() == cols)) {
            return None;
        }
        let vals = t.to_f64_vec().ok()?;
        parts.extend((0..cols).map(|c| vals[if vals.len() == 1 { 0 } else { c }]));
    }
    Tensor::new(vec![3 * cols], kiln_tensor::Data::from_f64_vec(dt, &parts).ok()?).ok()
}
