//! Layout choice for convolutions: regions of 2-D convolutions joined by layout-agnostic ops
//! run channels-last (NHWC), with one Transpose where a region reads an NCHW value and one
//! where an NCHW reader needs a value back.
//!
//! A region is a connected set of nodes, each either a 2-D f32 convolution (`Conv` or
//! `kiln::FusedConv`, constant 4-D weights, explicit or VALID padding) or an agnostic op: an
//! elementwise op (the `kiln::Chain` op list) whose 4-D output every non-constant input
//! matches or broadcasts into per channel (`[1, C, 1, 1]`), with constant operands that are a
//! single value or per channel; a `Concat` of 4-D values on the channel axis; or a
//! `GlobalAveragePool` (channels-last, a `ReduceMean` over H and W). Two nodes are
//! joined when one reads the other's output. Regions with at least two convolutions switch:
//! convolutions become `kiln::FusedConv` with `layout = "NHWC"`, per-channel constants are
//! re-laid out as `[1, 1, 1, C]`, Concat moves to axis 3. A region with one convolution stays
//! NCHW (its two transposes would cost more than the layout saves), and so does one whose
//! boundary transposes would move more than a quarter of the elements its convolutions read.

use crate::util::{Names, View, input, is_op, make_node, output};
use crate::{Pass, PassError};
use kiln_ir::{Attr, Graph, GraphPatch, Node, NodeId, ValueId};
use kiln_tensor::{DType, Dim, Shape, Tensor};
use std::collections::{BTreeMap, HashMap};

pub struct ChooseConvLayout;

const TO_NHWC: [i64; 4] = [0, 2, 3, 1];
const TO_NCHW: [i64; 4] = [0, 3, 1, 2];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Conv,
    Agnostic,
}

impl Pass for ChooseConvLayout {
    fn name(&self) -> &'static str {
        "choose-layout"
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let view = View::new(g);
        let kinds: Vec<Option<Kind>> = g.nodes.iter().map(|n| kind(&view, n)).collect();
        // Union-find over eligible nodes joined through the values between them.
        let mut parent: Vec<usize> = (0..g.nodes.len()).collect();
        fn find(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                p[i] = p[p[i]];
                i = p[i];
            }
            i
        }
        for (i, n) in g.nodes.iter().enumerate() {
            if kinds[i].is_none() {
                continue;
            }
            for &v in n.inputs.iter().take(if kinds[i] == Some(Kind::Conv) { 1 } else { usize::MAX }).flatten() {
                if let Some((p, _)) = view.producer(v)
                    && kinds[p.0].is_some()
                {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, p.0));
                    parent[a] = b;
                }
            }
        }
        let mut regions: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, k) in kinds.iter().enumerate() {
            if k.is_some() {
                let r = find(&mut parent, i);
                regions.entry(r).or_default().push(i);
            }
        }
        let mut patch = GraphPatch::new(g, "");
        let mut switched = Vec::new();
        for nodes in regions.values() {
            let convs = nodes.iter().filter(|&&i| kinds[i] == Some(Kind::Conv)).count();
            if convs < 2 || !worth_it(&view, nodes, &kinds) {
                continue;
            }
            if !switch(&view, nodes, &mut patch) {
                continue;
            }
            switched.push(format!("{} nodes ({convs} convolutions) from {}", nodes.len(), g.nodes[nodes[0]].label()));
        }
        if switched.is_empty() {
            return Ok(None);
        }
        patch.description = format!("run {} region(s) channels-last: {}", switched.len(), switched.join("; "));
        Ok(Some(patch))
    }
}

/// Elements of a value, a symbolic dim counted as 32 (a guess that only has to rank
/// boundary traffic against convolution traffic of the same graph).
fn volume(g: &Graph, v: ValueId) -> f64 {
    g.value(v).shape.as_ref().map_or(0.0, |s| s.0.iter().map(|d| d.known().map_or(32.0, |n| n as f64)).product())
}

/// Whether the transposes a region needs move at most a quarter of what its convolutions read:
/// otherwise the boundary traffic eats what the layout saves.
fn worth_it(view: &View, nodes: &[usize], kinds: &[Option<Kind>]) -> bool {
    let g = view.g;
    let inside: std::collections::HashSet<usize> = nodes.iter().copied().collect();
    let produced: std::collections::HashSet<ValueId> = nodes.iter().flat_map(|&i| g.nodes[i].outputs.iter().flatten().copied()).collect();
    let mut conv_reads = 0.0;
    let mut boundary = 0.0;
    let mut seen = std::collections::HashSet::new();
    for &i in nodes {
        let n = &g.nodes[i];
        let conv = kinds[i] == Some(Kind::Conv);
        for (k, v) in n.inputs.iter().enumerate() {
            let Some(v) = *v else { continue };
            if conv && k == 0 {
                conv_reads += volume(g, v);
            }
            let data = !(conv && k > 0) && view.constant(v).is_none();
            if data && !produced.contains(&v) && seen.insert(v) {
                boundary += volume(g, v);
            }
        }
        for &v in n.outputs.iter().flatten() {
            if (view.pinned(v) || view.readers(v).iter().any(|(r, _)| !inside.contains(&r.0))) && seen.insert(v) {
                boundary += volume(g, v);
            }
        }
    }
    boundary * 4.0 <= conv_reads
}

/// The 4-D shape of an f32 value.
fn shape4(g: &Graph, v: ValueId) -> Option<&[Dim]> {
    let info = g.value(v);
    let s = info.shape.as_ref()?;
    (info.dtype == Some(DType::F32) && s.0.len() == 4).then_some(&s.0[..])
}

/// A constant that broadcasts into a 4-D value per channel or as one value: `Some(true)`
/// when it must be re-laid out (per channel), `Some(false)` when it can stay.
fn channel_constant(t: &Tensor, channels: &Dim) -> Option<bool> {
    if t.len() == 1 {
        return Some(false);
    }
    let c = channels.known()?;
    let s = t.shape();
    let per_channel = match s.len() {
        4 => s[0] == 1 && s[1] == c && s[2] == 1 && s[3] == 1,
        3 => s[0] == c && s[1] == 1 && s[2] == 1,
        _ => false,
    };
    per_channel.then_some(true)
}

fn kind(view: &View, n: &Node) -> Option<Kind> {
    let g = view.g;
    let out = output(n, 0)?;
    if n.outputs.iter().flatten().count() != 1 || shape4(g, out).is_none() {
        return None;
    }
    let conv = is_op(n, "Conv") || (n.domain == "kiln" && n.op_type == "FusedConv" && n.unsupported.is_none());
    if conv {
        let w = view.constant(input(n, 1)?)?;
        let pads_ok = matches!(n.attr_str("auto_pad"), None | Some("NOTSET") | Some("VALID"));
        let ok = w.rank() == 4 && w.dtype() == DType::F32 && pads_ok && n.attr_str("layout").is_none() && shape4(g, input(n, 0)?).is_some();
        return ok.then_some(Kind::Conv);
    }
    let out_shape = shape4(g, out)?;
    if is_op(n, "GlobalAveragePool") {
        // Channels-last it is a ReduceMean over H and W.
        return shape4(g, input(n, 0)?).map(|_| Kind::Agnostic);
    }
    if is_op(n, "Concat") {
        let axis = n.attr_int("axis")?;
        let ok = (axis == 1 || axis == -3) && n.inputs.iter().all(|i| i.is_some_and(|v| shape4(g, v).is_some() && view.constant(v).is_none()));
        return ok.then_some(Kind::Agnostic);
    }
    // The ops a chain can hold (crate::chain): elementwise, shape-preserving.
    if !crate::chain::BINARY.iter().chain(crate::chain::UNARY).any(|op| is_op(n, op)) {
        return None;
    }
    let data_inputs = if is_op(n, "Clip") { 1 } else { n.inputs.len() };
    for (k, v) in n.inputs.iter().enumerate() {
        let Some(v) = *v else { continue };
        if let Some(t) = view.constant(v) {
            channel_constant(t, &out_shape[1])?;
            continue;
        }
        if k >= data_inputs {
            return None;
        }
        let s = shape4(g, v)?;
        let per_channel = s[0] == out_shape[0] && s[1] == out_shape[1] && s[2] == Dim::Known(1) && s[3] == Dim::Known(1);
        if s != out_shape && !per_channel {
            return None;
        }
    }
    Some(Kind::Agnostic)
}

fn permuted(s: &[Dim], perm: &[i64; 4]) -> Shape {
    Shape(perm.iter().map(|&a| s[a as usize].clone()).collect())
}

fn transpose(name: String, x: ValueId, y: ValueId, perm: [i64; 4]) -> Node {
    make_node(&name, "", "Transpose", 1, vec![Some(x)], vec![Some(y)], BTreeMap::from([("perm".to_string(), Attr::Ints(perm.to_vec()))]))
}

/// Rewrites one region channels-last; false (and no node changed) when it cannot.
fn switch(view: &View, nodes: &[usize], patch: &mut GraphPatch) -> bool {
    // Nodes go into the patch only once the whole region is rewritten (values added before a
    // failure stay unused and are compacted away).
    let mut removed = Vec::new();
    let mut added = Vec::new();
    let g = view.g;
    let mut names = Names::of(g);
    let inside: std::collections::HashSet<usize> = nodes.iter().copied().collect();
    let mut relaid: HashMap<ValueId, ValueId> = HashMap::new();
    // NCHW value -> its NHWC twin.
    let mut twin: HashMap<ValueId, ValueId> = HashMap::new();
    for &i in nodes {
        let n = &g.nodes[i];
        for v in n.outputs.iter().flatten() {
            let info = g.value(*v);
            let shape = info.shape.as_ref().map(|s| permuted(&s.0, &TO_NHWC));
            twin.insert(*v, patch.add_value(names.fresh(&format!("{}_nhwc", info.name)), info.dtype, shape));
        }
    }
    for &i in nodes {
        let n = &g.nodes[i];
        let conv = n.op_type == "Conv" || n.op_type == "FusedConv";
        let mut inputs = Vec::with_capacity(n.inputs.len());
        for (k, v) in n.inputs.iter().enumerate() {
            let Some(v) = *v else {
                inputs.push(None);
                continue;
            };
            if conv && k > 0 {
                inputs.push(Some(v)); // weights and bias keep their layout
                continue;
            }
            if let Some(&t) = twin.get(&v) {
                inputs.push(Some(t));
                continue;
            }
            if let Some(t) = view.constant(v) {
                // Per channel ([1, C, 1, 1] or [C, 1, 1]) becomes [1, 1, 1, C]: the same values.
                let moved = if t.len() > 1 {
                    match relaid.get(&v) {
                        Some(&m) => m,
                        None => {
                            let Ok(m) = t.clone().reshape(vec![1, 1, 1, t.len()]) else { return false };
                            let m = patch.add_constant(names.fresh(&format!("{}_nhwc", g.value(v).name)), m);
                            relaid.insert(v, m);
                            m
                        }
                    }
                } else {
                    v
                };
                inputs.push(Some(moved));
                continue;
            }
            // An NCHW value from outside the region: transposed once, shared by its readers.
            let info = g.value(v);
            let shape = info.shape.as_ref().map(|s| permuted(&s.0, &TO_NHWC));
            let t = patch.add_value(names.fresh(&format!("{}_nhwc", info.name)), info.dtype, shape);
            added.push(transpose(format!("{}_to_nhwc", info.name), v, t, TO_NHWC));
            twin.insert(v, t);
            inputs.push(Some(t));
        }
        let outputs: Vec<Option<ValueId>> = n.outputs.iter().map(|o| o.and_then(|v| twin.get(&v).copied())).collect();
        let mut attrs = n.attrs.clone();
        let (domain, op, opset) = if conv {
            attrs.insert("layout".into(), Attr::String(b"NHWC".to_vec()));
            ("kiln", "FusedConv", 1)
        } else if n.op_type == "GlobalAveragePool" {
            attrs.insert("keepdims".into(), Attr::Int(1));
            if n.opset >= 18 {
                let Ok(t) = Tensor::from_vec(vec![2], vec![1i64, 2]) else { return false };
                inputs.push(Some(patch.add_constant(names.fresh(&format!("{}_axes", n.name)), t)));
            } else {
                attrs.insert("axes".into(), Attr::Ints(vec![1, 2]));
            }
            ("", "ReduceMean", n.opset)
        } else {
            if n.op_type == "Concat" {
                attrs.insert("axis".into(), Attr::Int(3));
            }
            (n.domain.as_str(), n.op_type.as_str(), n.opset)
        };
        removed.push(NodeId(i));
        added.push(make_node(&n.name, domain, op, opset, inputs, outputs, attrs));
        // Values read outside the region (or graph outputs) come back as NCHW.
        for v in n.outputs.iter().flatten() {
            let outside = view.pinned(*v) || view.readers(*v).iter().any(|(r, _)| !inside.contains(&r.0));
            if outside && let Some(&t) = twin.get(v) {
                added.push(transpose(format!("{}_to_nchw", g.value(*v).name), t, *v, TO_NCHW));
            }
        }
    }
    for n in removed {
        patch.remove_node(n);
    }
    for n in added {
        patch.add_node(n);
    }
    true
}
