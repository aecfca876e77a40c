//! The rewrite: consumer weight rows times `s`, producer constants divided by `s` (or an
//! inserted `Mul(x, 1/s)`). Every scaled constant is a new initializer; the originals are
//! dropped only where nothing reads them any more.

use super::plan::{Axis, ConstRef, SmoothGroup, SmoothPlan};
use super::summary::{SkippedNode, SmoothSummary, SmoothedGroup, outlier_ratio};
use super::tensor::{factors, row_max, scaled};
use super::{ChannelStats, Fold, SmoothOptions};
use crate::QuantError;
use kiln_ir::{Graph, Model, Node, ValueId};
use kiln_tensor::{DType, Shape, Tensor};
use std::collections::{BTreeMap, HashSet};

struct Rewriter<'a> {
    g: &'a mut Graph,
    names: HashSet<String>,
    /// Initializers this rewrite created (each read by one node input: scaled in place again).
    fresh: HashSet<ValueId>,
    /// Originals replaced somewhere: removed at the end when nothing reads them.
    replaced: HashSet<ValueId>,
    /// Inserted Mul nodes, placed after the node of this index (None: before every node).
    after: BTreeMap<Option<usize>, Vec<Node>>,
}

impl Rewriter<'_> {
    fn fresh_name(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut k = 1;
        while self.names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        name
    }

    fn mismatch(&self, r: &ConstRef, reason: &str) -> QuantError {
        let node = self.g.nodes.get(r.node.0).map_or_else(|| format!("#{}", r.node.0), Node::label);
        QuantError::SmoothPlan { node, reason: reason.to_string() }
    }

    /// The constant `r` reads, checked to have its K channels where the plan says.
    fn constant(&self, r: &ConstRef, k: usize) -> Result<(ValueId, &Tensor), QuantError> {
        let v = self.g.nodes.get(r.node.0).and_then(|n| n.inputs.get(r.input).copied().flatten());
        let t = v.and_then(|v| self.g.initializers.get(&v)).filter(|t| t.dtype() == DType::F32);
        let (Some(v), Some(t)) = (v, t) else {
            return Err(self.mismatch(r, "the constant input the plan names is not there"));
        };
        let ok = match r.axis {
            Axis::Of2d(a) => t.rank() == 2 && t.shape()[a] == k,
            Axis::Last => t.shape().last().is_none_or(|&d| d == 1 || d == k),
        };
        if !ok {
            return Err(self.mismatch(r, &format!("constant has shape {:?}, not {k} channels", t.shape())));
        }
        Ok((v, t))
    }

    /// Replaces the constant `r` reads by `t` (in place when this rewrite made it).
    fn replace(&mut self, r: &ConstRef, v: ValueId, t: Tensor) {
        if self.fresh.contains(&v) {
            self.g.value_mut(v).shape = Some(Shape::known(t.shape()));
            self.g.initializers.insert(v, t);
            return;
        }
        let name = self.fresh_name(format!("{}_smoothed", self.g.value(v).name));
        let nv = self.g.add_value(name, Some(DType::F32), Some(Shape::known(t.shape())));
        self.g.initializers.insert(nv, t);
        self.g.nodes[r.node.0].inputs[r.input] = Some(nv);
        self.fresh.insert(nv);
        self.replaced.insert(v);
    }

    fn scale(&mut self, r: &ConstRef, s: &[f32], divide: bool) -> Result<(), QuantError> {
        let (v, t) = self.constant(r, s.len())?;
        let t =
            scaled(t, r.axis, s, divide).map_err(|e| QuantError::Weight { name: self.g.value(v).name.clone(), message: e.to_string() })?;
        self.replace(r, v, t);
        Ok(())
    }

    /// `x_smoothed = Mul(x, 1/s)` read by the group's consumers instead of `x`.
    fn insert_mul(&mut self, group: &SmoothGroup, s: &[f32], producer: Option<usize>) {
        let x = group.value;
        let base = self.g.value(x).name.clone();
        let inv: Vec<f32> = s.iter().map(|v| 1.0 / v).collect();
        let c = self.fresh_name(format!("{base}_smooth_scale"));
        let c = self.g.add_value(c, Some(DType::F32), Some(Shape::known(&[s.len()])));
        self.g.initializers.insert(c, Tensor::from_vec(vec![s.len()], inv).unwrap_or_else(|_| Tensor::scalar(1.0f32)));
        let out = self.fresh_name(format!("{base}_smoothed"));
        let info = self.g.value(x).clone();
        let out = self.g.add_value(out, Some(DType::F32), info.shape);
        let opset = group.consumer_nodes.first().map_or(13, |n| self.g.nodes[n.0].opset);
        let node = Node {
            name: format!("{base}_SmoothMul"),
            op_type: "Mul".into(),
            domain: String::new(),
            opset,
            inputs: vec![Some(x), Some(c)],
            outputs: vec![Some(out)],
            ..Node::default()
        };
        self.after.entry(producer).or_default().push(node);
        for n in &group.consumer_nodes {
            self.g.nodes[n.0].inputs[0] = Some(out);
        }
    }
}

/// Applies `plan` (made on this model by [`super::plan_smoothing`]) with the channel maxima
/// `stats` (over [`SmoothPlan::observation`]'s values). The result computes the same function
/// as `model` up to float rounding.
pub fn smooth(model: Model, plan: &SmoothPlan, stats: &ChannelStats, opts: &SmoothOptions) -> Result<(Model, SmoothSummary), QuantError> {
    let alpha = opts.alpha;
    if !(0.0..=1.0).contains(&alpha) {
        return Err(QuantError::SmoothAlpha { alpha });
    }
    let mut out = model;
    let producers = out.graph.producers();
    let names = out.graph.values.iter().map(|v| v.name.clone()).collect();
    let mut rw = Rewriter { g: &mut out.graph, names, fresh: HashSet::new(), replaced: HashSet::new(), after: BTreeMap::new() };
    let mut groups = Vec::new();
    for group in &plan.groups {
        let Some(x_max) = stats.values.get(&group.activation) else {
            return Err(QuantError::SmoothNotObserved { value: group.activation.clone() });
        };
        let k = group.channels;
        if x_max.len() != k {
            return Err(QuantError::Channels { value: group.activation.clone(), expected: k, found: x_max.len() });
        }
        if rw.g.values.get(group.value.0).is_none_or(|v| v.name != group.activation) {
            let node = group.consumers.first().cloned().unwrap_or_default();
            return Err(QuantError::SmoothPlan { node, reason: format!("'{}' is not the value the plan names", group.activation) });
        }
        let mut w_max = vec![0.0f32; k];
        for r in &group.multiply {
            let (v, t) = rw.constant(r, k)?;
            let Axis::Of2d(axis) = r.axis else { continue };
            row_max(t, axis, &mut w_max).map_err(|e| QuantError::Weight { name: rw.g.value(v).name.clone(), message: e.to_string() })?;
        }
        let s = factors(x_max, &w_max, alpha);
        for r in &group.multiply {
            rw.scale(r, &s, false)?;
        }
        for r in &group.divide {
            rw.scale(r, &s, true)?;
        }
        if matches!(group.fold, Fold::InsertMul { .. }) {
            rw.insert_mul(group, &s, producers.get(&group.value).map(|p| p.0));
        }
        let after: Vec<f32> = x_max.iter().zip(&s).map(|(x, s)| x / s).collect();
        groups.push(SmoothedGroup {
            activation: group.activation.clone(),
            channels: k,
            consumers: group.consumers.clone(),
            fold: group.fold.clone(),
            ratio_before: outlier_ratio(x_max),
            ratio_after: outlier_ratio(&after),
            factor_min: s.iter().copied().fold(f32::INFINITY, f32::min),
            factor_max: s.iter().copied().fold(0.0, f32::max),
        });
    }
    let (mut after, replaced) = (std::mem::take(&mut rw.after), std::mem::take(&mut rw.replaced));
    let g = &mut out.graph;
    let mut order = after.remove(&None).unwrap_or_default();
    for (i, n) in std::mem::take(&mut g.nodes).into_iter().enumerate() {
        order.push(n);
        order.extend(after.remove(&Some(i)).unwrap_or_default());
    }
    g.nodes = order;
    drop_unread(g, &replaced);
    kiln_ir::compact(g);
    kiln_ir::verify(&out)?;
    let summary = SmoothSummary {
        alpha,
        samples: stats.samples,
        groups,
        skipped: plan.skipped.iter().map(|(node, reason)| SkippedNode { node: node.clone(), reason: reason.clone() }).collect(),
    };
    out.metadata.insert(super::SMOOTH_METADATA_KEY.into(), summary.headline());
    Ok((out, summary))
}

/// Removes the replaced originals that no node, subgraph, input or output reads now.
fn drop_unread(g: &mut Graph, replaced: &HashSet<ValueId>) {
    let mut read: HashSet<ValueId> = g.outputs.iter().chain(&g.inputs).copied().collect();
    for n in &g.nodes {
        read.extend(n.inputs.iter().flatten().copied());
        for name in kiln_ir::subgraph_reads(n) {
            read.extend(g.value_by_name(&name));
        }
    }
    for v in replaced {
        if !read.contains(v) {
            g.initializers.remove(v);
        }
    }
}
