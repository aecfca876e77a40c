//! The rewrite: float MatMul / Gemm / Conv -> the same op reading DequantizeLinear outputs.
//!
//! - weights: int8 initializer + per-channel scale and zero point (0) ->
//!   `DequantizeLinear(w_q, w_scale, w_zero_point, axis)`, one per (weight, axis);
//! - static activation: `QuantizeLinear(x, s, zp) -> DequantizeLinear(., s, zp)`, one pair per
//!   value shared by all its quantized readers, placed right after the value's producer;
//! - dynamic activation: `DynamicQuantizeLinear(x) -> DequantizeLinear(y, y_scale, y_zp)`;
//! - biases (Gemm C, Conv B, a following Add) stay float; Gemm's alpha is folded into the
//!   weights; float weights nothing else reads are dropped.
//!
//! The result is plain ai.onnx at opset >= 13 (per-axis DequantizeLinear).

use crate::graph_edit::{Emit, Names, drop_unread, place};
use crate::select::{Candidate, Selection};
use crate::summary::{ActivationScheme, QuantSummary, QuantizedNode, WeightScheme};
use crate::weights::quantize_per_channel;
use crate::{QDType, QParams, QuantError, QuantOptions, Ranges};
use kiln_ir::{Attr, Graph, Model, Node, ValueId};
use kiln_tensor::{DType, Shape, Tensor};
use std::collections::{BTreeMap, HashMap};

/// The opset per-axis DequantizeLinear needs.
pub const MIN_OPSET: i64 = 13;

struct Rewriter<'a> {
    g: &'a mut Graph,
    names: Names,
    weights: HashMap<(ValueId, usize, u32), (ValueId, WeightScheme)>,
    activations: HashMap<ValueId, (ValueId, ActivationScheme)>,
    /// Nodes placed before every original node, and after a given original node.
    head: Vec<Node>,
    after: BTreeMap<usize, Vec<Node>>,
    producers: HashMap<ValueId, kiln_ir::NodeId>,
}

impl Emit for Rewriter<'_> {
    fn parts(&mut self) -> (&mut Graph, &mut Names) {
        (self.g, &mut self.names)
    }
}

impl Rewriter<'_> {
    /// The DequantizeLinear output standing for the candidate's weight.
    fn weight(&mut self, c: &Candidate) -> Result<(ValueId, WeightScheme), QuantError> {
        let key = (c.weight, c.axis, c.alpha.to_bits());
        if let Some(done) = self.weights.get(&key) {
            return Ok(done.clone());
        }
        let info = self.g.value(c.weight).clone();
        let fail = |e: kiln_tensor::TensorError| QuantError::Weight { name: info.name.clone(), message: e.to_string() };
        let w = &self.g.initializers[&c.weight];
        let shape = w.shape().to_vec();
        let qw = quantize_per_channel(w, c.axis, c.alpha).map_err(fail)?;
        let scales = qw.scale.as_slice::<f32>().map_err(fail)?;
        let scheme = WeightScheme {
            name: info.name.clone(),
            dtype: QDType::I8,
            axis: c.axis,
            channels: scales.len(),
            scale_min: scales.iter().copied().fold(f32::INFINITY, f32::min),
            scale_max: scales.iter().copied().fold(0.0, f32::max),
            folded_alpha: (c.alpha != 1.0).then_some(c.alpha),
        };
        let base = &info.name;
        let q = self.constant(format!("{base}_quantized"), qw.q);
        let s = self.constant(format!("{base}_scale"), qw.scale);
        let zp = self.constant(format!("{base}_zero_point"), qw.zero_point);
        let out = self.value(format!("{base}_dequantized"), DType::F32, Some(Shape::known(&shape)));
        let dq = self.node(
            format!("{base}_DequantizeLinear"),
            "DequantizeLinear",
            &[q, s, zp],
            &[out],
            vec![("axis", Attr::Int(c.axis as i64))],
        );
        self.head.push(dq);
        self.weights.insert(key, (out, scheme.clone()));
        Ok((out, scheme))
    }

    /// The DequantizeLinear output standing for the candidate's activation.
    fn activation(
        &mut self,
        c: &Candidate,
        node: &str,
        ranges: Option<&Ranges>,
        dtype: QDType,
    ) -> Result<(ValueId, ActivationScheme), QuantError> {
        if let Some(done) = self.activations.get(&c.activation) {
            return Ok(done.clone());
        }
        // Selection only takes f32 or untyped activations: record the type (fuse-qdq reads it).
        self.g.value_mut(c.activation).dtype = Some(DType::F32);
        let info = self.g.value(c.activation).clone();
        let (base, shape) = (&info.name, info.shape);
        let (q, s, zp, qn, scheme) = match ranges {
            Some(r) => {
                let Some(range) = r.values.get(base) else {
                    return Err(QuantError::NotCalibrated { value: base.clone(), node: node.to_string() });
                };
                let params = QParams::from_range(range.lo, range.hi, dtype);
                let s = self.constant(format!("{base}_scale"), Tensor::scalar(params.scale));
                let zp = match dtype {
                    QDType::U8 => Tensor::scalar(params.zero_point.clamp(0, 255) as u8),
                    QDType::I8 => Tensor::scalar(params.zero_point.clamp(-128, 127) as i8),
                };
                let zp = self.constant(format!("{base}_zero_point"), zp);
                let q = self.value(format!("{base}_quantized"), dtype.dtype(), shape.clone());
                let qn = self.node(format!("{base}_QuantizeLinear"), "QuantizeLinear", &[c.activation, s, zp], &[q], vec![]);
                let (lo, hi) = (range.lo, range.hi);
                (q, s, zp, qn, ActivationScheme::Static { value: base.clone(), method: r.method, lo, hi, params })
            }
            None => {
                let scalar = || Some(Shape::known(&[]));
                let q = self.value(format!("{base}_quantized"), DType::U8, shape.clone());
                let s = self.value(format!("{base}_scale"), DType::F32, scalar());
                let zp = self.value(format!("{base}_zero_point"), DType::U8, scalar());
                let qn = self.node(format!("{base}_DynamicQuantizeLinear"), "DynamicQuantizeLinear", &[c.activation], &[q, s, zp], vec![]);
                (q, s, zp, qn, ActivationScheme::Dynamic { value: base.clone() })
            }
        };
        let out = self.value(format!("{base}_dequantized"), DType::F32, shape);
        let dqn = self.node(format!("{base}_DequantizeLinear"), "DequantizeLinear", &[q, s, zp], &[out], vec![]);
        let nodes = [qn, dqn];
        match self.producers.get(&c.activation) {
            Some(p) => self.after.entry(p.0).or_default().extend(nodes),
            None => self.head.extend(nodes),
        }
        self.activations.insert(c.activation, (out, scheme.clone()));
        Ok((out, scheme))
    }
}

/// Applies the selection (made on this model) to it; `ranges` None quantizes activations dynamically.
pub(crate) fn rewrite(
    mut out: Model,
    opts: &QuantOptions,
    sel: &Selection,
    ranges: Option<&Ranges>,
) -> Result<(Model, QuantSummary), QuantError> {
    let weight_bytes_before = out.graph.parameter_bytes();
    let (opset_from, opset_to) = crate::opset::raise_opset(&mut out, MIN_OPSET, "per-channel DequantizeLinear")?;
    let producers = out.graph.producers();
    let names = Names::new(&out, opset_to);
    let mut rw = Rewriter {
        g: &mut out.graph,
        names,
        weights: HashMap::new(),
        activations: HashMap::new(),
        head: Vec::new(),
        after: BTreeMap::new(),
        producers,
    };
    let mut nodes = Vec::new();
    for c in &sel.candidates {
        let label = rw.g.nodes[c.node.0].label();
        let (w, weight) = rw.weight(c)?;
        let (x, activation) = rw.activation(c, &label, ranges, opts.activation)?;
        let n = &mut rw.g.nodes[c.node.0];
        n.inputs[0] = Some(x);
        n.inputs[1] = Some(w);
        if c.alpha != 1.0 {
            n.attrs.insert("alpha".into(), Attr::Float(1.0));
        }
        nodes.push(QuantizedNode { node: label, op: n.op_type.clone(), weight, activation });
    }
    let (head, after) = (std::mem::take(&mut rw.head), std::mem::take(&mut rw.after));
    let g = &mut out.graph;
    place(g, head, after);
    drop_unread(g, sel.candidates.iter().map(|c| c.weight));
    kiln_ir::compact(g);
    kiln_ir::verify(&out)?;
    let summary = QuantSummary {
        data_free: ranges.is_none(),
        activation_dtype: if ranges.is_some() { opts.activation } else { QDType::U8 },
        calibration: ranges.map(|r| r.method),
        samples: ranges.map(|r| r.samples),
        opset_from,
        opset_to,
        nodes,
        excluded: sel.excluded.clone(),
        weight_bytes_before,
        weight_bytes_after: out.graph.parameter_bytes(),
    };
    out.metadata.insert(crate::summary::METADATA_KEY.into(), summary.headline());
    Ok((out, summary))
}
