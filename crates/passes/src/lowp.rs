//! MatMuls with low-precision stored weights -> `kiln::WMatMul` (`fuse-lowp`).
//!
//! The weight-only forms the quantizer writes (and other tools export), in plain ai.onnx:
//! - `MatMul(A, Cast(W, to = FLOAT))` with W a constant f16 or bf16 `[K, N]`;
//! - `MatMul(A, DequantizeLinear(W, scale, zero_point))` with W a constant int4, uint4, int8 or
//!   uint8 `[K, N]`: blocked along K (`axis = 0`, `block_size = g`, scale `[ceil(K/g), N]`), one
//!   scale per column (`axis = 1`, scale `[N]`) or one scale;
//! - with bf16 W, an activation `Cast(Cast(x, to = BFLOAT16), to = FLOAT)` is read as
//!   `compute = "bf16"` on `x` (a target may then compute bf16 x bf16 products).
//!
//! The op reads W in its stored type, so a target keeps it small; it computes exactly what it
//! replaces (see `kiln_reference::ops::kiln::weight_only`). Runs right after `fuse-qdq` and
//! before constant folding, which would otherwise turn the Cast / DequantizeLinear of a
//! constant back into f32 weights. Int8 weights whose activation is quantized too are
//! `fuse-qdq`'s (it runs first).

use crate::util::{View, describe, input, is_op, make_node, output, string_attr};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::DType;
use std::collections::BTreeMap;

pub struct FuseLowp;

impl Pass for FuseLowp {
    fn name(&self) -> &'static str {
        "fuse-lowp"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut patch = GraphPatch::new(g, "");
        let mut done: Vec<String> = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            if !is_op(n, "MatMul") {
                continue;
            }
            let Some((inputs, attrs, kind)) = fuse(&view, n) else { continue };
            patch.add_node(make_node(&n.name, "kiln", "WMatMul", 1, inputs, vec![output(n, 0)], attrs));
            patch.remove_node(NodeId(i));
            done.push(format!("MatMul '{}' ({kind})", n.label()));
        }
        if done.is_empty() {
            return Ok(None);
        }
        patch.description = describe("weight-only ", &done);
        Ok(Some(patch))
    }
}

type Fusion = (Vec<Option<ValueId>>, BTreeMap<String, Attr>, String);

fn fuse(view: &View, n: &Node) -> Option<Fusion> {
    let (a, b) = (input(n, 0)?, input(n, 1)?);
    if view.g.value(a).dtype != Some(DType::F32) {
        return None;
    }
    let w = weight(view, b)?;
    let mut attrs = BTreeMap::new();
    let mut x = a;
    let mut kind = w.dtype.to_string();
    if w.dtype == DType::BF16
        && let Some(src) = bf16_rounded(view, a)
    {
        x = src;
        attrs.insert("compute".to_string(), string_attr("bf16"));
        kind.push_str(", bf16 compute");
    }
    if w.block > 0 {
        attrs.insert("block_size".to_string(), Attr::Int(w.block));
        kind.push_str(&format!(", groups of {}", w.block));
    }
    let mut inputs = vec![Some(x), Some(w.q)];
    if let Some(s) = w.scale {
        inputs.push(Some(s));
        if let Some(z) = w.zp {
            inputs.push(Some(z));
        }
    }
    Some((inputs, attrs, kind))
}

struct Weight {
    q: ValueId,
    dtype: DType,
    scale: Option<ValueId>,
    zp: Option<ValueId>,
    block: i64,
}

/// `b` as a Cast of an f16/bf16 constant, or a DequantizeLinear of an integer constant in one
/// of the layouts `kiln::WMatMul` takes.
fn weight(view: &View, b: ValueId) -> Option<Weight> {
    let (_, p) = view.producer(b)?;
    if is_op(p, "Cast") {
        let q = input(p, 0)?;
        let wt = view.constant(q)?;
        let to_float = p.attr_int("to") == Some(i64::from(DType::F32.to_onnx()));
        let ok = to_float && matches!(wt.dtype(), DType::F16 | DType::BF16) && wt.rank() == 2;
        return ok.then_some(Weight { q, dtype: wt.dtype(), scale: None, zp: None, block: 0 });
    }
    if !is_op(p, "DequantizeLinear") || p.attrs.contains_key("output_dtype") {
        return None;
    }
    let (q, s, zp) = (input(p, 0)?, input(p, 1)?, input(p, 2));
    let (wt, st) = (view.constant(q)?, view.constant(s)?);
    let &[k, n] = wt.shape() else { return None };
    if !matches!(wt.dtype(), DType::I4 | DType::U4 | DType::I8 | DType::U8) || st.dtype() != DType::F32 {
        return None;
    }
    let axis = p.attr_int("axis").unwrap_or(1);
    let axis = if axis < 0 { axis + 2 } else { axis };
    let block = p.attr_int("block_size").unwrap_or(0);
    let layout_ok = if block > 0 {
        axis == 0 && st.shape() == [k.div_ceil(block as usize), n]
    } else {
        (st.len() == 1 && st.rank() <= 1) || (axis == 1 && st.shape() == [n])
    };
    if !layout_ok {
        return None;
    }
    if let Some(z) = zp {
        let zt = view.constant(z)?;
        if zt.dtype() != wt.dtype() || zt.shape() != st.shape() {
            return None;
        }
    }
    Some(Weight { q, dtype: wt.dtype(), scale: Some(s), zp, block: block.max(0) })
}

/// `a` = `Cast(Cast(x, to = BFLOAT16), to = FLOAT)` with x f32: the source x.
fn bf16_rounded(view: &View, a: ValueId) -> Option<ValueId> {
    let (_, up) = view.producer_op(a, "Cast")?;
    let mid = input(up, 0)?;
    let (_, down) = view.producer_op(mid, "Cast")?;
    let x = input(down, 0)?;
    let ok = up.attr_int("to") == Some(i64::from(DType::F32.to_onnx()))
        && down.attr_int("to") == Some(i64::from(DType::BF16.to_onnx()))
        && view.g.value(x).dtype == Some(DType::F32);
    ok.then_some(x)
}
