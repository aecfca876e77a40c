//! Graph patches: what a pass returns instead of mutating the graph itself.
//!
//! A pass reads a graph and describes a rewrite: nodes to remove, nodes and values to add,
//! uses to redirect, initializers to set or drop, value facts (dtype, shape) to record.
//! [`GraphPatch::apply`] performs it and keeps the graph's interface (input and output names)
//! unchanged, so passes stay small and their tests read as "IR before -> IR after".

use crate::{Graph, IrError, Node, NodeId, ValueId, ValueInfo};
use kiln_tensor::{DType, Shape, Tensor};
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Debug, Default)]
pub struct GraphPatch {
    /// What the rewrite does, for logs ("fold BatchNormalization into Conv 'conv1'").
    pub description: String,
    base_values: usize,
    new_values: Vec<ValueInfo>,
    remove_nodes: BTreeSet<NodeId>,
    add_nodes: Vec<Node>,
    replace_uses: Vec<(ValueId, ValueId)>,
    set_initializers: Vec<(ValueId, Tensor)>,
    remove_initializers: Vec<ValueId>,
    facts: Vec<(ValueId, Option<DType>, Option<Shape>)>,
}

impl GraphPatch {
    /// An empty patch against `g` (new values are numbered after `g`'s).
    pub fn new(g: &Graph, description: impl Into<String>) -> GraphPatch {
        GraphPatch { description: description.into(), base_values: g.values.len(), ..GraphPatch::default() }
    }

    /// A new value; the id is valid in the patched graph (and usable in added nodes now).
    pub fn add_value(&mut self, name: impl Into<String>, dtype: Option<DType>, shape: Option<Shape>) -> ValueId {
        self.new_values.push(ValueInfo { name: name.into(), dtype, shape });
        ValueId(self.base_values + self.new_values.len() - 1)
    }

    /// A new constant value.
    pub fn add_constant(&mut self, name: impl Into<String>, t: Tensor) -> ValueId {
        let v = self.add_value(name, Some(t.dtype()), Some(Shape::known(t.shape())));
        self.set_initializers.push((v, t));
        v
    }

    pub fn remove_node(&mut self, n: NodeId) {
        self.remove_nodes.insert(n);
    }

    pub fn add_node(&mut self, n: Node) {
        self.add_nodes.push(n);
    }

    /// Every reader of `from` (nodes, subgraph captures by name, graph outputs) reads `to`.
    pub fn replace_uses(&mut self, from: ValueId, to: ValueId) {
        self.replace_uses.push((from, to));
    }

    pub fn set_initializer(&mut self, v: ValueId, t: Tensor) {
        self.set_initializers.push((v, t));
    }

    pub fn remove_initializer(&mut self, v: ValueId) {
        self.remove_initializers.push(v);
    }

    /// Records a value's element type and/or shape (None leaves that fact as it is).
    pub fn set_facts(&mut self, v: ValueId, dtype: Option<DType>, shape: Option<Shape>) {
        self.facts.push((v, dtype, shape));
    }

    pub fn is_empty(&self) -> bool {
        self.new_values.is_empty()
            && self.remove_nodes.is_empty()
            && self.add_nodes.is_empty()
            && self.replace_uses.is_empty()
            && self.set_initializers.is_empty()
            && self.remove_initializers.is_empty()
            && self.facts.is_empty()
    }

    /// Applies the patch. Added nodes take the place of the first removed node (or go last).
    /// When a graph output is redirected, the new value takes the output's name so the model's
    /// interface does not change.
    pub fn apply(self, g: &mut Graph) -> Result<(), IrError> {
        if self.base_values != g.values.len() {
            return Err(IrError::Type {
                node: self.description.clone(),
                op: "patch".into(),
                message: format!("patch was made for a graph of {} values, this one has {}", self.base_values, g.values.len()),
            });
        }
        g.values.extend(self.new_values);
        let n_values = g.values.len();
        let check = |v: ValueId| if v.0 < n_values { Ok(()) } else { Err(IrError::BadValueId { graph: g.name.clone(), id: v.0 }) };
        // Resolve chains (a -> b, b -> c) so every redirect lands on its final value.
        let mut redirect: HashMap<ValueId, ValueId> = HashMap::new();
        for &(from, to) in &self.replace_uses {
            check(from)?;
            check(to)?;
            redirect.insert(from, to);
        }
        let resolve = |mut v: ValueId| {
            let mut hops = 0;
            while let Some(&next) = redirect.get(&v) {
                if next == v || hops > redirect.len() {
                    break;
                }
                v = next;
                hops += 1;
            }
            v
        };
        let insert_at = self.remove_nodes.iter().next().map(|n| n.0);
        let mut kept: Vec<Node> = Vec::with_capacity(g.nodes.len() + self.add_nodes.len());
        let mut added = Some(self.add_nodes);
        for (i, node) in std::mem::take(&mut g.nodes).into_iter().enumerate() {
            if Some(i) == insert_at {
                kept.extend(added.take().unwrap_or_default());
            }
            if !self.remove_nodes.contains(&NodeId(i)) {
                kept.push(node);
            }
        }
        kept.extend(added.take().unwrap_or_default());
        for n in &mut kept {
            for i in n.inputs.iter_mut().flatten() {
                *i = resolve(*i);
            }
        }
        // Subgraphs read outer values by name: rename captures of redirected values.
        let renames: Vec<(String, String)> = redirect
            .keys()
            .map(|&from| (g.values[from.0].name.clone(), g.values[resolve(from).0].name.clone()))
            .collect();
        if !renames.is_empty() {
            for n in &mut kept {
                for a in n.attrs.values_mut() {
                    match a {
                        crate::Attr::Graph(sg) => rename_captures(sg, &renames),
                        crate::Attr::Graphs(sgs) => sgs.iter_mut().for_each(|sg| rename_captures(sg, &renames)),
                        _ => {}
                    }
                }
            }
        }
        g.nodes = kept;
        for k in 0..g.outputs.len() {
            let old = g.outputs[k];
            let new = resolve(old);
            if new != old {
                // Keep the interface name on the value that now flows out.
                let name = std::mem::take(&mut g.values[old.0].name);
                g.values[old.0].name = format!("{name}.replaced");
                g.values[new.0].name = name;
                g.outputs[k] = new;
            }
        }
        for v in self.remove_initializers {
            g.initializers.remove(&v);
        }
        for (v, t) in self.set_initializers {
            check(v)?;
            let info = &mut g.values[v.0];
            info.dtype = Some(t.dtype());
            info.shape = Some(Shape::known(t.shape()));
            g.initializers.insert(v, t);
        }
        for (v, dtype, shape) in self.facts {
            check(v)?;
            let info = &mut g.values[v.0];
            if dtype.is_some() {
                info.dtype = dtype;
            }
            if shape.is_some() {
                info.shape = shape;
            }
        }
        Ok(())
    }
}

fn rename_captures(g: &mut Graph, renames: &[(String, String)]) {
    let free: BTreeSet<ValueId> = g.free_values().into_iter().collect();
    for v in free {
        if let Some((_, to)) = renames.iter().find(|(from, _)| *from == g.values[v.0].name) {
            g.values[v.0].name = to.clone();
        }
    }
    for n in &mut g.nodes {
        for a in n.attrs.values_mut() {
            match a {
                crate::Attr::Graph(sg) => rename_captures(sg, renames),
                crate::Attr::Graphs(sgs) => sgs.iter_mut().for_each(|sg| rename_captures(sg, renames)),
                _ => {}
            }
        }
    }
}

/// Removes values that nothing defines or reads any more, renumbering ids. Call after passes
/// so dumps stay small; ids held from before are invalid afterwards.
pub fn compact(g: &mut Graph) {
    let mut used = vec![false; g.values.len()];
    for v in g.inputs.iter().chain(&g.outputs).chain(g.initializers.keys()) {
        used[v.0] = true;
    }
    for n in &g.nodes {
        for v in n.inputs.iter().chain(&n.outputs).flatten() {
            used[v.0] = true;
        }
    }
    let mut map = vec![None; g.values.len()];
    let mut values = Vec::new();
    for (i, info) in std::mem::take(&mut g.values).into_iter().enumerate() {
        if used[i] {
            map[i] = Some(ValueId(values.len()));
            values.push(info);
        }
    }
    g.values = values;
    let m = |v: &mut ValueId| {
        if let Some(n) = map[v.0] {
            *v = n;
        }
    };
    g.inputs.iter_mut().for_each(m);
    g.outputs.iter_mut().for_each(m);
    for n in &mut g.nodes {
        n.inputs.iter_mut().flatten().for_each(m);
        n.outputs.iter_mut().flatten().for_each(m);
    }
    g.initializers = std::mem::take(&mut g.initializers).into_iter().filter_map(|(v, t)| map[v.0].map(|n| (n, t))).collect();
}
