//! Shape inference with symbolic dims: fills `ValueInfo.dtype` / `shape` of every value whose
//! facts follow from its producer's inputs and attributes.
//!
//! Besides facts, small integer tensors that hold shapes (`Shape` outputs and what Gather,
//! Slice, Concat, Unsqueeze, Cast... make of them) are tracked element by element, possibly
//! symbolically, so `Reshape(x, Concat(Shape(x)[0], 12, 32))` gets a shape like
//! `[batch,12,32]`. A dim that cannot be expressed gets a fresh symbol `unk_N`.
//!
//! Derived facts never contradict declared ones: a known dim or element type that differs,
//! or a rank that differs, is an error naming the node. A declared symbol is refined by a
//! derived known dim; otherwise declared facts win (and flow downstream).

mod dims;
mod rules;
mod rules_layout;
mod rules_quant;
mod rules_resize;
mod values;

use crate::util::constant;
use crate::{Pass, PassError};
use kiln_ir::{Graph, GraphPatch, Node, ValueId};
use kiln_tensor::{DType, Dim, Shape, Tensor};
use std::cell::Cell;
use std::collections::HashMap;

pub use values::SymInt;

/// What is known of one value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fact {
    pub dtype: Option<DType>,
    pub shape: Option<Vec<Dim>>,
}

impl Fact {
    pub fn new(dtype: Option<DType>, shape: Option<Vec<Dim>>) -> Fact {
        Fact { dtype, shape }
    }
}

/// The shape inference pass (its name lets a pipeline run it more than once).
pub struct InferShapes {
    name: &'static str,
}

impl InferShapes {
    pub fn new(name: &'static str) -> InferShapes {
        InferShapes { name }
    }
}

impl Default for InferShapes {
    fn default() -> Self {
        InferShapes::new("infer-shapes")
    }
}

impl Pass for InferShapes {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError> {
        let st = infer(g)?;
        let mut patch = GraphPatch::new(g, "record derived dtypes and shapes");
        let mut changed = 0;
        for (i, fact) in st.facts.iter().enumerate() {
            let info = &g.values[i];
            let shape = fact.shape.clone().map(Shape);
            if fact.dtype != info.dtype || shape != info.shape {
                let new_dtype = if fact.dtype != info.dtype { fact.dtype } else { None };
                let new_shape = if shape != info.shape { shape } else { None };
                patch.set_facts(ValueId(i), new_dtype, new_shape);
                changed += 1;
            }
        }
        if changed == 0 {
            return Ok(None);
        }
        patch.description = format!("record derived dtypes and shapes of {changed} values");
        Ok(Some(patch))
    }
}

/// Everything shape inference knows after one sweep over the graph.
pub struct State<'g> {
    pub g: &'g Graph,
    pub facts: Vec<Fact>,
    pub values: HashMap<ValueId, Vec<SymInt>>,
    next_sym: Cell<usize>,
}

/// Runs shape inference over `g` without changing it.
pub fn infer(g: &Graph) -> Result<State<'_>, PassError> {
    let mut facts: Vec<Fact> = g.values.iter().map(|v| Fact::new(v.dtype, v.shape.as_ref().map(|s| s.0.clone()))).collect();
    let mut next = 0;
    for v in &g.values {
        for s in v.shape.iter().flat_map(|s| s.symbols()) {
            if let Some(k) = s.strip_prefix("unk_").and_then(|k| k.parse::<usize>().ok()) {
                next = next.max(k + 1);
            }
        }
    }
    let mut values = HashMap::new();
    for (&v, t) in &g.initializers {
        facts[v.0] = Fact::new(Some(t.dtype()), Some(Shape::known(t.shape()).0));
        if let Some(c) = constant(g, v)
            && let Some(sv) = values::of_tensor(c)
        {
            values.insert(v, sv);
        }
    }
    let mut st = State { g, facts, values, next_sym: Cell::new(next) };
    for nid in g.topo_order()? {
        let n = &g.nodes[nid.0];
        if n.unsupported.is_some() || n.attrs.values().any(|a| matches!(a, kiln_ir::Attr::Graph(_) | kiln_ir::Attr::Graphs(_))) {
            continue;
        }
        let conflict = |message: String| PassError::Conflict { node: n.label(), op: n.qualified_op(), message };
        let cx = Cx { st: &st, n };
        let derived = rules::infer(&cx).map_err(conflict)?;
        let svs = values::propagate(&cx);
        for (k, out) in n.outputs.iter().enumerate() {
            let Some(v) = *out else { continue };
            if st.g.initializers.contains_key(&v) {
                continue;
            }
            if let Some(d) = derived.get(k) {
                let merged = merge(&st.facts[v.0], d).map_err(|m| conflict(format!("output '{}': {m}", g.value(v).name)))?;
                st.facts[v.0] = merged;
            }
            if let Some(Some(sv)) = svs.get(k) {
                st.values.insert(v, sv.clone());
            }
        }
    }
    Ok(st)
}

/// Combines a declared (or earlier) fact with a derived one; errors on a contradiction.
pub fn merge(declared: &Fact, derived: &Fact) -> Result<Fact, String> {
    let dtype = match (declared.dtype, derived.dtype) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!("derived element type {b} contradicts the declared {a}"));
        }
        (a, b) => a.or(b),
    };
    let shape = match (&declared.shape, &derived.shape) {
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                return Err(format!("derived shape {} contradicts the declared {}", shape_text(b), shape_text(a)));
            }
            let mut out = Vec::with_capacity(a.len());
            for (x, y) in a.iter().zip(b) {
                out.push(match (x, y) {
                    (Dim::Known(p), Dim::Known(q)) if p != q => {
                        return Err(format!("derived shape {} contradicts the declared {}", shape_text(b), shape_text(a)));
                    }
                    (Dim::Sym(_), Dim::Known(q)) => Dim::Known(*q),
                    (x, _) => x.clone(),
                });
            }
            Some(out)
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    Ok(Fact { dtype, shape })
}

pub fn shape_text(dims: &[Dim]) -> String {
    Shape(dims.to_vec()).to_string()
}

/// One node under inference: its inputs' facts, constants and shape values.
pub struct Cx<'a> {
    pub st: &'a State<'a>,
    pub n: &'a Node,
}

impl Cx<'_> {
    pub fn input(&self, i: usize) -> Option<ValueId> {
        self.n.inputs.get(i).copied().flatten()
    }
    pub fn has_input(&self, i: usize) -> bool {
        self.input(i).is_some()
    }
    pub fn fact(&self, i: usize) -> Option<&Fact> {
        self.input(i).map(|v| &self.st.facts[v.0])
    }
    pub fn dtype(&self, i: usize) -> Option<DType> {
        self.fact(i).and_then(|f| f.dtype)
    }
    pub fn shape(&self, i: usize) -> Option<&[Dim]> {
        self.fact(i).and_then(|f| f.shape.as_deref())
    }
    pub fn rank(&self, i: usize) -> Option<usize> {
        self.shape(i).map(<[Dim]>::len)
    }
    /// A constant input (not an overridable graph input).
    pub fn constant(&self, i: usize) -> Option<&Tensor> {
        self.input(i).and_then(|v| constant(self.st.g, v))
    }
    /// An input's elements as integers, possibly symbolic (shape values).
    pub fn sv(&self, i: usize) -> Option<&[SymInt]> {
        self.input(i).and_then(|v| self.st.values.get(&v)).map(Vec::as_slice)
    }
    /// An input's elements when all are known integers.
    pub fn ints(&self, i: usize) -> Option<Vec<i64>> {
        self.sv(i)?.iter().map(SymInt::int).collect()
    }
    pub fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.n.attr_int(name).unwrap_or(default)
    }
    /// A fresh symbol `unk_N`, unused elsewhere in the graph.
    pub fn fresh(&self) -> Dim {
        let k = self.st.next_sym.get();
        self.st.next_sym.set(k + 1);
        Dim::Sym(format!("unk_{k}"))
    }
    /// Maps a possibly negative axis into `0..rank`.
    pub fn axis(&self, a: i64, rank: usize) -> Result<usize, String> {
        let r = rank as i64;
        let v = if a < 0 { a + r } else { a };
        if v < 0 || v >= r {
            return Err(format!("axis {a} is out of range for rank {rank}"));
        }
        Ok(v as usize)
    }
    /// The `axes` attribute (older opsets) or constant input `i` (newer ones); `Some(vec![])`
    /// when neither is given, `None` when the axes are not constant.
    pub fn axes(&self, i: usize) -> Option<Vec<i64>> {
        if let Some(a) = self.n.attr_ints("axes") {
            return Some(a.to_vec());
        }
        if self.has_input(i) { self.ints(i) } else { Some(vec![]) }
    }
}
