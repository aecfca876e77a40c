//! The rewrite into plain ai.onnx (what the `fuse-lowp` pass pattern-matches):
//!
//! - F16 / BF16: `[K, N]` initializer `<W>_f16` / `<W>_bf16` -> `Cast(to = FLOAT)` -> MatMul's
//!   B; with `compute_bf16` the activation also goes `Cast(to = BFLOAT16) -> Cast(to = FLOAT)`
//!   (one pair per value, shared by its rewritten readers, right after its producer);
//! - Int4 / Int8: `<W>_quantized [K, N]`, `<W>_scale f32 [ceil(K/g), N]` and, asymmetric,
//!   `<W>_zero_point` -> `DequantizeLinear(axis = 0, block_size = g)` -> MatMul's B
//!   (g = 0: `[N]` parameters, `axis = 1`);
//! - Gemm (untransposed A) becomes that MatMul, with transB undone and alpha folded into W,
//!   plus `Add(beta * C)` when C is given.
//!
//! Int4 or blocked parameters need ai.onnx opset 21 and IR version 10; the others opset 13.

use super::gptq::gptq;
use super::grid::Grid;
use super::hessian::Hessians;
use super::matrix::{QMatrix, proxy_error, rtn};
use super::summary::{ProxyError, WEIGHT_ONLY_METADATA_KEY, WeightOnlyNode, WeightOnlySummary};
use super::{Rounding, WeightFormat, WeightOnlyOptions};
use crate::QuantError;
use crate::graph_edit::{Emit, Names, drop_unread, place};
use crate::select::{Candidate, Selection};
use kiln_ir::{Attr, Graph, Model, Node, NodeId, ValueId};
use kiln_tensor::{DType, Shape, Tensor};
use std::collections::{BTreeMap, HashMap};

/// The IR version that carries 4-bit types and opset 21.
const IR_VERSION_21: i64 = 10;
/// Dampening retries when H is not positive definite: each multiplies the last by 10.
const DAMP_RETRIES: usize = 4;

/// A weight as the rewritten MatMul reads it: `[k, n]` f32, transB undone, alpha folded.
struct Weight {
    name: String,
    k: usize,
    n: usize,
    values: Vec<f32>,
}

/// What makes two readers' B the same: weight, transposed, alpha bits, activation (GPTQ only).
type WeightKey = (ValueId, bool, u32, Option<ValueId>);

struct Writer<'a> {
    g: &'a mut Graph,
    opts: &'a WeightOnlyOptions,
    hessians: Option<&'a Hessians>,
    names: Names,
    producers: HashMap<ValueId, NodeId>,
    head: Vec<Node>,
    after: BTreeMap<usize, Vec<Node>>,
    /// (weight, transposed, alpha bits, activation for GPTQ) -> B and its summary.
    weights: HashMap<WeightKey, (ValueId, WeightOnlyNode)>,
    activations: HashMap<ValueId, ValueId>,
    /// Gemm C constants replaced by beta * C (dropped when nothing else reads them).
    replaced: Vec<ValueId>,
}

fn tensor_error(name: &str) -> impl Fn(kiln_tensor::TensorError) -> QuantError + '_ {
    move |e| QuantError::Weight { name: name.to_string(), message: e.to_string() }
}

fn cast_to(dt: DType) -> Vec<(&'static str, Attr)> {
    vec![("to", Attr::Int(i64::from(dt.to_onnx())))]
}

impl Emit for Writer<'_> {
    fn parts(&mut self) -> (&mut Graph, &mut Names) {
        (self.g, &mut self.names)
    }
}

impl Writer<'_> {
    /// The candidate's weight as `[K, N]` f32.
    fn weight(&self, c: &Candidate) -> Result<Weight, QuantError> {
        let name = self.g.value(c.weight).name.clone();
        let t = &self.g.initializers[&c.weight];
        let (rows, cols) = (t.shape()[0], t.shape()[1]);
        let data = t.as_slice::<f32>().map_err(tensor_error(&name))?;
        let transposed = c.axis == 0;
        let (k, n) = if transposed { (cols, rows) } else { (rows, cols) };
        let values = if transposed {
            (0..k).flat_map(|i| (0..n).map(move |j| data[j * cols + i] * c.alpha)).collect()
        } else {
            data.iter().map(|&v| v * c.alpha).collect()
        };
        Ok(Weight { name, k, n, values })
    }

    /// The value standing for the candidate's weight as MatMul's B, and its summary.
    fn b_input(&mut self, c: &Candidate, label: &str) -> Result<(ValueId, WeightOnlyNode), QuantError> {
        let gptq = self.opts.format.is_int() && self.opts.method == Rounding::Gptq;
        let key = (c.weight, c.axis == 0, c.alpha.to_bits(), gptq.then_some(c.activation));
        if let Some((b, first)) = self.weights.get(&key) {
            let shared = WeightOnlyNode { note: Some(format!("weight shared with {}", first.node)), ..first.clone() };
            return Ok((*b, shared));
        }
        let w = self.weight(c)?;
        let node = &self.g.nodes[c.node.0];
        let mut info = WeightOnlyNode {
            node: label.to_string(),
            op: node.op_type.clone(),
            weight: w.name.clone(),
            format: self.opts.format,
            k: w.k,
            n: w.n,
            group_size: None,
            method: None,
            bytes_before: w.k * w.n * 4,
            bytes_after: 0,
            folded_alpha: (c.alpha != 1.0).then_some(c.alpha),
            proxy_error: None,
            note: None,
        };
        let b = match self.opts.format {
            WeightFormat::F16 => self.float_weight(&w, DType::F16, &mut info)?,
            WeightFormat::BF16 => self.float_weight(&w, DType::BF16, &mut info)?,
            WeightFormat::Int4 | WeightFormat::Int8 => self.int_weight(c, &w, label, &mut info)?,
        };
        self.weights.insert(key, (b, info.clone()));
        Ok((b, info))
    }

    fn float_weight(&mut self, w: &Weight, dt: DType, info: &mut WeightOnlyNode) -> Result<ValueId, QuantError> {
        let fail = tensor_error(&w.name);
        let t = Tensor::from_vec(vec![w.k, w.n], w.values.clone()).and_then(|t| t.cast(dt)).map_err(&fail)?;
        info.bytes_after = dt.storage_bytes(t.len());
        let stored = self.constant(format!("{}_{dt}", w.name), t);
        let out = self.value(format!("{}_float", w.name), DType::F32, Some(Shape::known(&[w.k, w.n])));
        let cast = self.node(format!("{}_Cast", w.name), "Cast", &[stored], &[out], cast_to(DType::F32));
        self.head.push(cast);
        Ok(out)
    }

    fn int_weight(&mut self, c: &Candidate, w: &Weight, label: &str, info: &mut WeightOnlyNode) -> Result<ValueId, QuantError> {
        let grid = Grid { bits: if self.opts.format == WeightFormat::Int4 { 4 } else { 8 }, symmetric: self.opts.symmetric };
        let g = self.opts.group_size;
        let group = if g == 0 { w.k } else { g };
        info.group_size = Some(g);
        let m = match self.opts.method {
            Rounding::Rtn => {
                info.method = Some(Rounding::Rtn);
                rtn(&w.values, w.k, w.n, group, grid)
            }
            Rounding::Gptq => self.gptq_weight(c, w, label, group, grid, info)?,
        };
        let fail = tensor_error(&w.name);
        let pshape = if g == 0 { vec![w.n] } else { vec![m.groups(), w.n] };
        let q = Tensor::new(vec![w.k, w.n], grid.data(&m.q)).map_err(&fail)?;
        let scale = Tensor::from_vec(pshape.clone(), m.steps.iter().map(|s| s.scale).collect()).map_err(&fail)?;
        let zp: Vec<f32> = m.steps.iter().map(|s| s.zero_point).collect();
        let zp = (!grid.symmetric).then(|| Tensor::new(pshape, grid.data(&zp))).transpose().map_err(&fail)?;
        info.bytes_after = [Some(&q), Some(&scale), zp.as_ref()].into_iter().flatten().map(|t| t.dtype().storage_bytes(t.len())).sum();
        let mut inputs = vec![self.constant(format!("{}_quantized", w.name), q), self.constant(format!("{}_scale", w.name), scale)];
        if let Some(zp) = zp {
            inputs.push(self.constant(format!("{}_zero_point", w.name), zp));
        }
        let out = self.value(format!("{}_dequantized", w.name), DType::F32, Some(Shape::known(&[w.k, w.n])));
        let attrs = if g == 0 { vec![("axis", Attr::Int(1))] } else { vec![("axis", Attr::Int(0)), ("block_size", Attr::Int(g as i64))] };
        let dq = self.node(format!("{}_DequantizeLinear", w.name), "DequantizeLinear", &inputs, &[out], attrs);
        self.head.push(dq);
        Ok(out)
    }

    /// GPTQ with the activation's Hessian, dampening raised on failure, then round-to-nearest.
    fn gptq_weight(
        &self,
        c: &Candidate,
        w: &Weight,
        label: &str,
        group: usize,
        grid: Grid,
        info: &mut WeightOnlyNode,
    ) -> Result<QMatrix, QuantError> {
        let value = self.g.value(c.activation).name.clone();
        let Some(h) = self.hessians.and_then(|hs| hs.values.get(&value)) else {
            return Err(QuantError::NoHessian { value, node: label.to_string() });
        };
        if h.dim != w.k {
            return Err(QuantError::HessianShape { value, expected: w.k, found: h.dim });
        }
        let h = h.matrix();
        let base = rtn(&w.values, w.k, w.n, group, grid);
        let mut damp = f64::from(self.opts.damp);
        for _ in 0..DAMP_RETRIES {
            if let Some(m) = gptq(&w.values, &h, w.k, w.n, group, grid, damp) {
                let rtn_err = proxy_error(&w.values, &base.dequantized(), &h, w.k, w.n);
                let gptq_err = proxy_error(&w.values, &m.dequantized(), &h, w.k, w.n);
                info.method = Some(Rounding::Gptq);
                info.proxy_error = Some(ProxyError { rtn: rtn_err, gptq: gptq_err, damp });
                return Ok(m);
            }
            damp = damp.max(1e-4) * 10.0;
        }
        info.method = Some(Rounding::Rtn);
        info.note = Some(format!("H not positive definite even with dampening {:.0e}; round-to-nearest", damp / 10.0));
        Ok(base)
    }

    /// The activation as the rewritten MatMul reads it: itself, or rounded through bf16.
    fn activation(&mut self, c: &Candidate) -> ValueId {
        let x = c.activation;
        if !(self.opts.format == WeightFormat::BF16 && self.opts.compute_bf16) {
            return x;
        }
        if let Some(&done) = self.activations.get(&x) {
            return done;
        }
        self.g.value_mut(x).dtype = Some(DType::F32);
        let info = self.g.value(x).clone();
        let rounded = self.value(format!("{}_bf16", info.name), DType::BF16, info.shape.clone());
        let back = self.value(format!("{}_bf16_float", info.name), DType::F32, info.shape);
        let to_bf16 = self.node(format!("{}_Cast_bf16", info.name), "Cast", &[x], &[rounded], cast_to(DType::BF16));
        let to_f32 = self.node(format!("{}_Cast_float", info.name), "Cast", &[rounded], &[back], cast_to(DType::F32));
        match self.producers.get(&x) {
            Some(p) => self.after.entry(p.0).or_default().extend([to_bf16, to_f32]),
            None => self.head.extend([to_bf16, to_f32]),
        }
        self.activations.insert(x, back);
        back
    }

    /// Gemm -> MatMul (+ Add of beta * C after it).
    fn gemm_to_matmul(&mut self, i: usize) -> Result<(), QuantError> {
        let n = self.g.nodes[i].clone();
        let c = n.inputs.get(2).copied().flatten();
        let beta = n.attr_float("beta").unwrap_or(1.0);
        let node = &mut self.g.nodes[i];
        node.op_type = "MatMul".into();
        node.attrs.clear();
        node.inputs.truncate(2);
        let (Some(c), Some(y)) = (c, n.outputs.first().copied().flatten()) else {
            return Ok(());
        };
        let yinfo = self.g.value(y).clone();
        let product = self.value(format!("{}_matmul", yinfo.name), DType::F32, yinfo.shape.clone());
        self.g.nodes[i].outputs[0] = Some(product);
        let mut added = Vec::new();
        let bias = if beta == 1.0 {
            c
        } else {
            let cname = self.g.value(c).name.clone();
            let constant = self.g.initializers.get(&c).filter(|_| !self.g.inputs.contains(&c)).cloned();
            match constant {
                Some(t) => {
                    let scaled: Vec<f32> = t.as_slice::<f32>().map_err(tensor_error(&cname))?.iter().map(|&v| v * beta).collect();
                    let t = Tensor::from_vec(t.shape().to_vec(), scaled).map_err(tensor_error(&cname))?;
                    self.replaced.push(c);
                    self.constant(format!("{cname}_beta"), t)
                }
                None => {
                    let b = self.constant(format!("{}_beta", n.label()), Tensor::scalar(beta));
                    let out = self.value(format!("{cname}_beta"), DType::F32, self.g.value(c).shape.clone());
                    added.push(self.node(format!("{}_beta_Mul", n.label()), "Mul", &[c, b], &[out], vec![]));
                    out
                }
            }
        };
        added.push(self.node(format!("{}_bias_Add", n.label()), "Add", &[product, bias], &[y], vec![]));
        self.after.entry(i).or_default().extend(added);
        Ok(())
    }
}

/// The opset and IR version the options need.
fn needs(opts: &WeightOnlyOptions) -> (i64, Option<i64>, &'static str) {
    if opts.format == WeightFormat::Int4 || (opts.format.is_int() && opts.group_size > 0) {
        (21, Some(IR_VERSION_21), "blocked DequantizeLinear and 4-bit weights")
    } else if opts.format.is_int() {
        (crate::MIN_OPSET, None, "per-column DequantizeLinear")
    } else {
        (crate::MIN_OPSET, None, "bf16 / f16 Cast")
    }
}

pub(crate) fn rewrite(
    mut out: Model,
    opts: &WeightOnlyOptions,
    sel: Selection,
    hessians: Option<&Hessians>,
) -> Result<(Model, WeightOnlySummary), QuantError> {
    let weight_bytes_before = out.graph.parameter_bytes();
    let ir_version_from = out.ir_version;
    let (opset, ir, why) = needs(opts);
    let (opset_from, opset_to) = crate::opset::raise_opset(&mut out, opset, why)?;
    if let Some(ir) = ir {
        out.ir_version = out.ir_version.max(ir);
    }
    let producers = out.graph.producers();
    let names = Names::new(&out, opset_to);
    let mut w = Writer {
        g: &mut out.graph,
        opts,
        hessians,
        names,
        producers,
        head: Vec::new(),
        after: BTreeMap::new(),
        weights: HashMap::new(),
        activations: HashMap::new(),
        replaced: Vec::new(),
    };
    let mut nodes = Vec::new();
    for c in &sel.candidates {
        let label = w.g.nodes[c.node.0].label();
        let (b, info) = w.b_input(c, &label)?;
        let x = w.activation(c);
        if w.g.nodes[c.node.0].op_type == "Gemm" {
            w.gemm_to_matmul(c.node.0)?;
        }
        let n = &mut w.g.nodes[c.node.0];
        n.inputs[0] = Some(x);
        n.inputs[1] = Some(b);
        nodes.push(WeightOnlyNode { node: label, ..info });
    }
    let (head, after, replaced) = (std::mem::take(&mut w.head), std::mem::take(&mut w.after), std::mem::take(&mut w.replaced));
    let g = &mut out.graph;
    place(g, head, after);
    drop_unread(g, sel.candidates.iter().map(|c| c.weight).chain(replaced));
    kiln_ir::compact(g);
    kiln_ir::verify(&out)?;
    let summary = WeightOnlySummary {
        format: opts.format,
        group_size: opts.group_size,
        symmetric: opts.symmetric,
        method: opts.method,
        compute_bf16: opts.compute_bf16 && opts.format == WeightFormat::BF16,
        samples: hessians.map(|h| h.samples).filter(|_| opts.format.is_int() && opts.method == Rounding::Gptq),
        opset_from,
        opset_to,
        ir_version_from,
        ir_version_to: out.ir_version,
        nodes,
        excluded: sel.excluded,
        weight_bytes_before,
        weight_bytes_after: out.graph.parameter_bytes(),
    };
    out.metadata.insert(WEIGHT_ONLY_METADATA_KEY.into(), summary.headline());
    Ok((out, summary))
}
