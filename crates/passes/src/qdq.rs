//! QuantizeLinear/DequantizeLinear graphs -> `kiln::QMatMul` / `kiln::QConv` (`fuse-qdq`).
//!
//! A product whose weight is `DequantizeLinear(int8 constant)` and whose activation is
//! `DequantizeLinear(QuantizeLinear(x))` (static, the same scale and zero point on both) or
//! `DequantizeLinear(DynamicQuantizeLinear(x))` (dynamic) becomes one op that reads the float
//! `x` and the int8 weight directly:
//! - `MatMul(A, B)` with B `[K, N]`, per-tensor or per-column (axis 1) weight scales;
//! - `Gemm(A, B, C)` with transA = 0: transB = 1 weights are transposed to `[K, N]` here, alpha
//!   joins the weight scales, `beta * C` (one value or one per column) becomes the bias;
//! - `Conv(X, W, B)` with per-tensor or per-output-channel (axis 0) weight scales.
//!
//! onnxruntime's dynamic quantization (`DynamicQuantizeLinear -> MatMulInteger / ConvInteger ->
//! Cast -> Mul(scale)`) becomes a dynamic `kiln::QMatMul` / `kiln::QConv`. Imported integer ops are rewritten the same way: `QLinearMatMul` / `QLinearConv` become
//! `DequantizeLinear -> kiln::QMatMul / kiln::QConv -> QuantizeLinear` (QLinearConv's int32
//! bias turned into a float one with scale `x_scale * w_scale`), so neighbouring integer ops meet
//! at a Q/DQ pair that the CPU target runs natively.
//!
//! The Q/DQ nodes left without readers are removed by dead-code elimination. The fused ops
//! compute exactly what they replace (their reference kernels run the same ai.onnx steps), so
//! the pass changes nothing but float rounding.

use crate::util::{Names, View, derived_name, describe, input, is_op, make_node, output};
use crate::{Pass, PassError};
use kiln_ir::{Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{DType, Data, Tensor};
use std::collections::BTreeMap;

pub struct FuseQdq;

impl Pass for FuseQdq {
    fn name(&self) -> &'static str {
        "fuse-qdq"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let mut names = Names::of(g);
        let mut patch = GraphPatch::new(g, "");
        let mut done: Vec<String> = Vec::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let mut cx = Cx { view: &view, patch: &mut patch, names: &mut names };
            let fused = if is_op(n, "MatMul") || is_op(n, "Gemm") {
                cx.matmul(n)
            } else if is_op(n, "Conv") {
                cx.conv(n)
            } else if is_op(n, "QLinearMatMul") || is_op(n, "QLinearConv") {
                cx.qlinear(n)
            } else if is_op(n, "MatMulInteger") || is_op(n, "ConvInteger") {
                let removed = cx.integer_product(n);
                removed.map(|r| {
                    for id in r {
                        patch.remove_node(id);
                    }
                    "dynamic, imported"
                })
            } else {
                None
            };
            let Some(kind) = fused else { continue };
            patch.remove_node(NodeId(i));
            done.push(format!("{} '{}' ({kind})", n.op_type, n.label()));
        }
        if done.is_empty() {
            return Ok(None);
        }
        patch.description = describe("int8 ", &done);
        Ok(Some(patch))
    }
}

struct Cx<'a, 'g> {
    view: &'a View<'g>,
    patch: &'a mut GraphPatch,
    names: &'a mut Names,
}

/// The float activation and its quantization: static (scale, zero point) or dynamic (none).
struct Act {
    x: ValueId,
    params: Option<(ValueId, Option<ValueId>)>,
}

/// An int8/uint8 constant weight with its scale(s) and optional zero point(s).
struct Weight {
    q: ValueId,
    scale: ValueId,
    zp: Option<ValueId>,
}

impl Cx<'_, '_> {
    fn matmul(&mut self, n: &Node) -> Option<&'static str> {
        let gemm = is_op(n, "Gemm");
        if gemm && (n.attr_int("transA").unwrap_or(0) != 0) {
            return None;
        }
        let trans_b = gemm && n.attr_int("transB").unwrap_or(0) != 0;
        let act = activation(self.view, input(n, 0)?)?;
        let w = weight(self.view, input(n, 1)?, 2, if trans_b { 0 } else { 1 })?;
        let (mut w_q, mut scale, zp, mut bias) = (w.q, w.scale, w.zp, None);
        if gemm {
            // Everything is computed before anything is added to the patch.
            let wt = self.view.constant(w.q)?;
            let columns = *wt.shape().get(if trans_b { 0 } else { 1 })?;
            let kn = if trans_b { Some(transpose2(wt)?) } else { None };
            let alpha = n.attr_float("alpha").unwrap_or(1.0);
            let scaled = if alpha == 1.0 {
                None
            } else {
                let s = self.view.constant(scale)?;
                let v: Vec<f32> = s.to_f64_vec().ok()?.iter().map(|&x| (x * f64::from(alpha)) as f32).collect();
                Some(Tensor::from_vec(s.shape().to_vec(), v).ok()?)
            };
            let b = match input(n, 2) {
                None => None,
                Some(c) => {
                    let beta = f64::from(n.attr_float("beta").unwrap_or(1.0));
                    let ct = self.view.constant(c)?;
                    let cv = ct.to_f64_vec().ok()?;
                    if ct.dtype() != DType::F32 || !(cv.len() == 1 || (cv.len() == columns && ct.shape().last() == Some(&columns))) {
                        return None;
                    }
                    let b: Vec<f32> = (0..columns).map(|j| (beta * cv[if cv.len() == 1 { 0 } else { j }]) as f32).collect();
                    Some((c, Tensor::from_vec(vec![columns], b).ok()?))
                }
            };
            if let Some(t) = kn {
                w_q = self.constant(&format!("{}_kn", self.view.g.value(w.q).name), t);
            }
            if let Some(t) = scaled {
                scale = self.constant(&format!("{}_alpha", self.view.g.value(scale).name), t);
            }
            if let Some((c, t)) = b {
                bias = Some(self.constant(&format!("{}_bias", self.view.g.value(c).name), t));
            }
        }
        let inputs = vec![Some(act.x), act.params.map(|p| p.0), act.params.and_then(|p| p.1), Some(w_q), Some(scale), zp, bias];
        self.patch.add_node(make_node(&n.name, "kiln", "QMatMul", 1, trim(inputs), vec![output(n, 0)], BTreeMap::new()));
        Some(if act.params.is_some() { "static" } else { "dynamic" })
    }

    fn conv(&mut self, n: &Node) -> Option<&'static str> {
        let act = activation(self.view, input(n, 0)?)?;
        let (_, dq) = self.view.producer_op(input(n, 1)?, "DequantizeLinear")?;
        let rank = self.view.constant(input(dq, 0)?)?.rank();
        let w = weight(self.view, input(n, 1)?, rank.max(3), 0)?;
        let inputs = vec![Some(act.x), act.params.map(|p| p.0), act.params.and_then(|p| p.1), Some(w.q), Some(w.scale), w.zp, input(n, 2)];
        self.patch.add_node(make_node(&n.name, "kiln", "QConv", 1, trim(inputs), vec![output(n, 0)], n.attrs.clone()));
        Some(if act.params.is_some() { "static" } else { "dynamic" })
    }

    /// onnxruntime's dynamic form: `DynamicQuantizeLinear(x) -> (q, s, zp)`,
    /// `MatMulInteger(q, W, zp, w_zp) -> Cast(float) -> Mul(., Mul(s, w_scale))` becomes one
    /// dynamic `kiln::QMatMul(x, _, _, W, w_scale, w_zp)`; `ConvInteger` likewise a dynamic
    /// `kiln::QConv` (one weight scale: a per-channel one would need the output's channel axis).
    /// Returns the Cast and Mul it replaces.
    fn integer_product(&mut self, n: &Node) -> Option<Vec<NodeId>> {
        let conv = n.op_type == "ConvInteger";
        let view = self.view;
        let (q, w_q) = (input(n, 0)?, input(n, 1)?);
        let (_, dql) = view.producer_op(q, "DynamicQuantizeLinear")?;
        if output(dql, 0) != Some(q) || input(n, 2) != output(dql, 2) {
            return None;
        }
        let (x, s) = (input(dql, 0)?, output(dql, 1)?);
        let wt = view.constant(w_q)?;
        let rank_ok = if conv { wt.rank() >= 3 } else { wt.rank() == 2 };
        if !matches!(wt.dtype(), DType::I8 | DType::U8) || !rank_ok || view.g.value(x).dtype != Some(DType::F32) {
            return None;
        }
        let (cast_id, cast) = view.sole_reader(output(n, 0)?)?;
        if !is_op(cast, "Cast") || cast.attr_int("to") != Some(1) {
            return None;
        }
        let (mul_id, mul) = view.sole_reader(output(cast, 0)?)?;
        if !is_op(mul, "Mul") {
            return None;
        }
        let cast_out = output(cast, 0)?;
        let scale = if input(mul, 0) == Some(cast_out) { input(mul, 1)? } else { input(mul, 0)? };
        let (_, smul) = view.producer_op(scale, "Mul")?;
        let w_scale = match (input(smul, 0)?, input(smul, 1)?) {
            (a, b) if a == s => b,
            (a, b) if b == s => a,
            _ => return None,
        };
        let st = view.constant(w_scale)?;
        let columns = if conv { 1 } else { wt.shape()[1] };
        if st.dtype() != DType::F32 || !(st.len() == 1 || (st.len() == columns && st.rank() == 1)) {
            return None;
        }
        let w_zp = input(n, 3);
        if let Some(z) = w_zp {
            let zt = view.constant(z)?;
            if zt.dtype() != wt.dtype() || zt.len() != st.len() {
                return None;
            }
        }
        let inputs = vec![Some(x), None, None, Some(w_q), Some(w_scale), w_zp];
        let (op, attrs) = if conv { ("QConv", n.attrs.clone()) } else { ("QMatMul", BTreeMap::new()) };
        self.patch.add_node(make_node(&n.name, "kiln", op, 1, trim(inputs), vec![output(mul, 0)], attrs));
        Some(vec![cast_id, mul_id])
    }

    /// QLinearMatMul(a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp) and QLinearConv(x, x_s, x_zp, w, w_s,
    /// w_zp, y_s, y_zp, B) -> DequantizeLinear -> kiln::QMatMul / QConv -> QuantizeLinear.
    fn qlinear(&mut self, n: &Node) -> Option<&'static str> {
        let conv = n.op_type == "QLinearConv";
        let [a_q, a_s, a_zp, w_q, w_s, w_zp, y_s, y_zp] = std::array::from_fn(|k| input(n, k));
        let (a_q, a_s, w_q, w_s, y_s) = (a_q?, a_s?, w_q?, w_s?, y_s?);
        let wt = self.view.constant(w_q)?;
        if !matches!(wt.dtype(), DType::I8 | DType::U8) || (conv && wt.rank() < 3) || (!conv && wt.rank() != 2) {
            return None;
        }
        let a_scale = self.view.constant(a_s)?;
        if a_scale.len() != 1 || a_zp.is_some_and(|z| self.view.constant(z).is_none_or(|t| t.len() != 1)) {
            return None;
        }
        let bias = match input(n, 8).filter(|_| conv) {
            None => None,
            Some(b) => Some(self.float_bias(b, a_scale, self.view.constant(w_s)?)?),
        };
        let out = output(n, 0)?;
        let base = self.view.g.value(out).name.clone();
        let (a_shape, y_shape) = (self.view.g.value(a_q).shape.clone(), self.view.g.value(out).shape.clone());
        let a_f = self.patch.add_value(self.names.fresh(&format!("{base}_in")), Some(DType::F32), a_shape);
        let y_f = self.patch.add_value(self.names.fresh(&format!("{base}_float")), Some(DType::F32), y_shape);
        let opset = n.opset.max(13);
        self.patch.add_node(make_node(
            &derived_name(n, "_dq"),
            "",
            "DequantizeLinear",
            opset,
            vec![Some(a_q), Some(a_s), a_zp],
            vec![Some(a_f)],
            BTreeMap::new(),
        ));
        let op = if conv { "QConv" } else { "QMatMul" };
        let inputs = vec![Some(a_f), Some(a_s), a_zp, Some(w_q), Some(w_s), w_zp, bias];
        let attrs = if conv { n.attrs.clone() } else { BTreeMap::new() };
        self.patch.add_node(make_node(&n.name, "kiln", op, 1, trim(inputs), vec![Some(y_f)], attrs));
        self.patch.add_node(make_node(
            &derived_name(n, "_q"),
            "",
            "QuantizeLinear",
            opset,
            vec![Some(y_f), Some(y_s), y_zp],
            vec![Some(out)],
            BTreeMap::new(),
        ));
        Some("imported")
    }

    /// QLinearConv's int32 bias as f32: `B[m] * x_scale * w_scale[m]`.
    fn float_bias(&mut self, b: ValueId, x_scale: &Tensor, w_scale: &Tensor) -> Option<ValueId> {
        let bt = self.view.constant(b)?;
        let (bv, xs, ws) = (bt.to_f64_vec().ok()?, x_scale.to_f64_vec().ok()?, w_scale.to_f64_vec().ok()?);
        if bt.dtype() != DType::I32 || !(ws.len() == 1 || ws.len() == bv.len()) {
            return None;
        }
        let v: Vec<f32> = bv.iter().enumerate().map(|(m, &x)| (x * xs[0] * ws[if ws.len() == 1 { 0 } else { m }]) as f32).collect();
        Some(self.constant(&format!("{}_f32", self.view.g.value(b).name), Tensor::from_vec(vec![v.len()], v).ok()?))
    }

    fn constant(&mut self, base: &str, t: Tensor) -> ValueId {
        let name = self.names.fresh(base);
        self.patch.add_constant(name, t)
    }
}

/// `a` as a quantized activation: `DQ(Q(x, s, zp), s, zp)` with scalar constants, or
/// `DQ(DynamicQuantizeLinear(x))` with the three outputs in order.
fn activation(view: &View, a: ValueId) -> Option<Act> {
    let (_, dq) = view.producer_op(a, "DequantizeLinear")?;
    let (q_val, s, zp) = (input(dq, 0)?, input(dq, 1)?, input(dq, 2));
    let (_, q) = view.producer(q_val)?;
    let float_in = |x: ValueId| view.g.value(x).dtype == Some(DType::F32);
    if is_op(q, "DynamicQuantizeLinear") {
        let x = input(q, 0)?;
        let same = output(q, 0) == Some(q_val) && output(q, 1) == Some(s) && zp.is_some() && output(q, 2) == zp;
        return (same && float_in(x)).then_some(Act { x, params: None });
    }
    if !is_op(q, "QuantizeLinear") || q.attrs.contains_key("output_dtype") || q.attrs.contains_key("block_size") {
        return None;
    }
    let x = input(q, 0)?;
    let scale = view.constant(s)?;
    let zp_t = zp.map(|z| view.constant(z)).map_or(Some(None), |t| t.map(Some))?;
    let same_scale = input(q, 1).and_then(|v| view.constant(v)).is_some_and(|t| t == scale);
    let same_zp = match (input(q, 2), zp_t) {
        (None, None) => true,
        (Some(v), Some(t)) => view.constant(v).is_some_and(|u| u == t),
        _ => false,
    };
    let zp_ok = zp_t.is_none_or(|t| t.len() == 1 && matches!(t.dtype(), DType::U8 | DType::I8));
    let ok = same_scale && same_zp && zp_ok && scale.len() == 1 && scale.dtype() == DType::F32 && float_in(x);
    ok.then_some(Act { x, params: Some((s, zp)) })
}

/// `b` as `DequantizeLinear(w)` of an int8/uint8 constant of rank `rank` whose scale is one
/// value or one per element of axis `axis` (the output channels).
fn weight(view: &View, b: ValueId, rank: usize, axis: usize) -> Option<Weight> {
    let (_, dq) = view.producer_op(b, "DequantizeLinear")?;
    let (q, s, zp) = (input(dq, 0)?, input(dq, 1)?, input(dq, 2));
    let (wt, st) = (view.constant(q)?, view.constant(s)?);
    if !matches!(wt.dtype(), DType::I8 | DType::U8) || wt.rank() != rank || st.dtype() != DType::F32 || dq.attrs.contains_key("block_size")
    {
        return None;
    }
    if st.len() > 1 {
        let dq_axis = dq.attr_int("axis").unwrap_or(1);
        let dq_axis = if dq_axis < 0 { dq_axis + rank as i64 } else { dq_axis };
        if st.rank() != 1 || dq_axis != axis as i64 || wt.shape().get(axis) != Some(&st.len()) {
            return None;
        }
    }
    if let Some(z) = zp {
        let zt = view.constant(z)?;
        if zt.dtype() != wt.dtype() || zt.len() != st.len() {
            return None;
        }
    }
    Some(Weight { q, scale: s, zp })
}

/// A 2-D tensor transposed (the int8 weights of a transB Gemm).
fn transpose2(t: &Tensor) -> Option<Tensor> {
    let [r, c] = *t.shape() else { return None };
    let idx = |i: usize| (i % r) * c + i / r;
    let data = match t.data() {
        Data::I8(v) => Data::I8((0..r * c).map(|i| v[idx(i)]).collect()),
        Data::U8(v) => Data::U8((0..r * c).map(|i| v[idx(i)]).collect()),
        _ => return None,
    };
    Tensor::new(vec![c, r], data).ok()
}

/// Drops trailing absent inputs (an op's optional tail).
fn trim(mut inputs: Vec<Option<ValueId>>) -> Vec<Option<ValueId>> {
    while inputs.last() == Some(&None) {
        inputs.pop();
    }
    inputs
}
