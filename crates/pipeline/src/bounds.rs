//! Upper bounds for integer runtime inputs that index a table, so that seeded random inputs
//! (`--random`, validation without `--data`) stay in range: a BERT's `token_type_ids` index a
//! table of 2 rows, and a value of 2 would be an error, not a test.
//!
//! An input is bounded by every `Gather` whose indices it reaches through shape-only ops
//! (Cast, Identity, Reshape, Unsqueeze, Squeeze, Flatten): the bound is the gathered
//! axis of the data, when that size is known. Inputs nothing bounds are absent from the map.

use std::collections::BTreeMap;

/// Ops that move an integer input along unchanged in value.
const PASS_THROUGH: [&str; 6] = ["Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten"];

/// One use of a value, as both the IR and a plan can describe it.
#[derive(Clone)]
struct Use {
    op: String,
    /// Which input of the op the value is.
    slot: usize,
    /// The op's first output, followed through pass-through ops.
    output: Option<usize>,
    /// For a Gather: the size of its data along the gathered axis, when known.
    gathered: Option<usize>,
}

/// Walks forward from each input; `uses(v)` lists the uses of value `v`.
fn walk(inputs: &[(String, usize)], uses: impl Fn(usize) -> Vec<Use>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (name, start) in inputs {
        let mut bound: Option<usize> = None;
        let mut stack = vec![*start];
        let mut seen = std::collections::HashSet::new();
        while let Some(v) = stack.pop() {
            if !seen.insert(v) {
                continue;
            }
            for u in uses(v) {
                if u.op == "Gather" && u.slot == 1 {
                    if let Some(n) = u.gathered {
                        bound = Some(bound.map_or(n, |b| b.min(n)));
                    }
                } else if u.slot == 0 && PASS_THROUGH.contains(&u.op.as_str()) {
                    stack.extend(u.output);
                }
            }
        }
        if let Some(b) = bound {
            out.insert(name.clone(), b);
        }
    }
    out
}

fn axis(raw: i64, rank: usize) -> Option<usize> {
    let a = if raw < 0 { raw + rank as i64 } else { raw };
    usize::try_from(a).ok().filter(|&a| a < rank)
}

/// Bounds from an IR graph (top level).
pub fn of_graph(g: &kiln_ir::Graph) -> BTreeMap<String, usize> {
    let shape_of = |v: kiln_ir::ValueId| -> Option<Vec<usize>> {
        if let Some(t) = g.initializers.get(&v) {
            return Some(t.shape().to_vec());
        }
        let s = g.value(v).shape.as_ref()?;
        s.0.iter().map(|d| if let kiln_tensor::Dim::Known(n) = d { Some(*n) } else { None }).collect()
    };
    let mut by_value: BTreeMap<usize, Vec<Use>> = BTreeMap::new();
    for n in &g.nodes {
        for (slot, i) in n.inputs.iter().enumerate() {
            let Some(i) = i else { continue };
            let gathered = (n.op_type == "Gather" && n.domain.is_empty())
                .then(|| n.inputs.first().copied().flatten().and_then(shape_of))
                .flatten()
                .and_then(|s| axis(n.attr_int("axis").unwrap_or(0), s.len()).map(|a| s[a]));
            let op = if n.domain.is_empty() { n.op_type.clone() } else { format!("{}.{}", n.domain, n.op_type) };
            by_value.entry(i.0).or_default().push(Use { op, slot, output: n.outputs.first().copied().flatten().map(|o| o.0), gathered });
        }
    }
    let inputs: Vec<(String, usize)> = g.runtime_inputs().into_iter().map(|v| (g.value(v).name.clone(), v.0)).collect();
    walk(&inputs, |v| by_value.get(&v).cloned().unwrap_or_default())
}

/// Bounds from a compiled plan (its steps keep the IR op names).
pub fn of_plan(p: &kiln_target::Plan) -> BTreeMap<String, usize> {
    let shape_of = |v: usize| -> Option<Vec<usize>> {
        let pv = p.values.get(v)?;
        if let Some(w) = pv.weight.and_then(|w| p.weights.get(w))
            && w.layout == "row-major"
        {
            return Some(w.shape.clone());
        }
        pv.shape.as_ref()?.iter().map(|d| if let kiln_target::DimSpec::Known(n) = d { Some(*n) } else { None }).collect()
    };
    let mut by_value: BTreeMap<usize, Vec<Use>> = BTreeMap::new();
    for s in &p.steps {
        for (slot, i) in s.inputs.iter().enumerate() {
            let Some(i) = *i else { continue };
            let axis_attr = match s.attrs.get("axis") {
                Some(kiln_target::AttrValue::Int(a)) => *a,
                _ => 0,
            };
            let gathered = (s.op == "Gather" && s.domain.is_empty())
                .then(|| s.inputs.first().copied().flatten().and_then(shape_of))
                .flatten()
                .and_then(|sh| axis(axis_attr, sh.len()).map(|a| sh[a]));
            let op = if s.domain.is_empty() { s.op.clone() } else { format!("{}.{}", s.domain, s.op) };
            by_value.entry(i).or_default().push(Use { op, slot, output: s.outputs.first().copied().flatten(), gathered });
        }
    }
    let inputs: Vec<(String, usize)> = p.inputs.iter().map(|&v| (p.values[v].name.clone(), v)).collect();
    walk(&inputs, |v| by_value.get(&v).cloned().unwrap_or_default())
}
