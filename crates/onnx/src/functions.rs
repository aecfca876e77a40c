//! Model-local functions (`ModelProto.functions`, IR version 8 and later).
//!
//! Kiln's IR has no functions: a node that calls a model-local function is expanded inline at
//! import. The function's body nodes take the call's place with
//! - formal inputs and outputs renamed to the call's actual values (a formal input the call
//!   leaves out, by passing fewer inputs or an empty name, reads as absent in the body),
//! - every other value renamed `<call>/<name>`, where `<call>` is the calling node's name, or
//!   `<op_type>_<index>` for an unnamed node, with `#1`, `#2`... added where that would clash
//!   with a name the model already uses,
//! - attribute references (`ref_attr_name`) replaced by the call's attribute of that name, else
//!   the function's default (`attribute_proto`, IR 9), else dropped,
//! - each body node read under the function's own `opset_import`.
//!
//! Bodies that call local functions are expanded in turn. Calls in subgraphs (If/Loop/Scan
//! bodies) are expanded when the importer reads those subgraphs. Before a call is expanded, the
//! size of its expansion is computed (through nested calls and subgraphs): that is where a
//! recursive function is found and refused, and where a model that would expand past
//! [`MAX_EXPANDED_NODES`] is refused before any work is done.

use crate::OnnxError;
use crate::import::MAX_DEFAULT_OPSET;
use kiln_ir::normalize_domain;
use onnx_protobuf::{AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most nodes the calls of one model may expand to. Functions calling functions can grow a
/// model exponentially (each level doubling, say); past this the model is refused, not expanded.
pub const MAX_EXPANDED_NODES: usize = 1_000_000;

/// The deepest chain of calls (a function calling a function calling ...) Kiln expands; deeper
/// chains are refused rather than risk the stack. Exporters nest one level per module.
pub const MAX_CALL_DEPTH: usize = 64;

/// (domain, name, overload), the domain normalised (`ai.onnx` is `""`).
type Key = (String, String, String);

struct Function<'m> {
    proto: &'m FunctionProto,
    /// The model's opsets overlaid with the function's own `opset_import`.
    opsets: BTreeMap<String, i64>,
    /// Every value name in the body, subgraphs included, that is not a formal input.
    internal: Vec<String>,
}

/// The model's local functions and the value names taken so far (so expansions never clash).
pub(crate) struct Functions<'m> {
    funcs: HashMap<Key, Function<'m>>,
    taken: RefCell<HashSet<String>>,
    /// Nodes one call of each function expands to, subgraphs included (memo of [`Functions::size`]).
    sizes: RefCell<HashMap<Key, usize>>,
    /// Nodes the calls expanded so far produce.
    expanded: Cell<usize>,
}

/// One node of a graph after expansion.
pub(crate) struct Expanded<'a> {
    pub node: Cow<'a, NodeProto>,
    /// The opsets of the function body the node comes from; `None`: the enclosing graph's.
    pub opsets: Option<&'a BTreeMap<String, i64>>,
}

impl<'m> Functions<'m> {
    pub fn new(mp: &'m ModelProto, model_opsets: &BTreeMap<String, i64>) -> Result<Functions<'m>, OnnxError> {
        let mut funcs = HashMap::new();
        for fp in &mp.functions {
            let key = (normalize_domain(&fp.domain).to_string(), fp.name.clone(), fp.overload.clone());
            let name = display(&key);
            let err = |reason: String| OnnxError::Function { function: name.clone(), reason };
            if fp.name.is_empty() {
                return Err(err("a model-local function has no name".into()));
            }
            let mut opsets = model_opsets.clone();
            for o in &fp.opset_import {
                opsets.insert(normalize_domain(&o.domain).to_string(), o.version);
            }
            if let Some(&v) = opsets.get("")
                && v > MAX_DEFAULT_OPSET
            {
                return Err(err(format!("imports ai.onnx opset {v}, newer than the newest Kiln supports ({MAX_DEFAULT_OPSET})")));
            }
            let mut names = HashSet::new();
            for n in &fp.node {
                node_names(n, &mut names);
            }
            for i in &fp.input {
                names.remove(i);
            }
            names.remove("");
            let mut internal: Vec<String> = names.into_iter().collect();
            internal.sort();
            if funcs.insert(key, Function { proto: fp, opsets, internal }).is_some() {
                return Err(err("is defined twice".into()));
            }
        }
        let mut taken = HashSet::new();
        if !funcs.is_empty()
            && let Some(g) = mp.graph.as_ref()
        {
            graph_names(g, &mut taken);
        }
        Ok(Functions { funcs, taken: RefCell::new(taken), sizes: RefCell::default(), expanded: Cell::new(0) })
    }

    fn lookup(&self, np: &NodeProto) -> Option<(Key, &Function<'m>)> {
        if self.funcs.is_empty() {
            return None;
        }
        let key = (normalize_domain(&np.domain).to_string(), np.op_type.clone(), np.overload.clone());
        self.funcs.get(&key).map(|f| (key, f))
    }

    /// A graph's nodes with every call to a local function replaced by the function's body.
    pub fn expand<'a>(&'a self, nodes: &'a [NodeProto]) -> Result<Vec<Expanded<'a>>, OnnxError> {
        let mut out = Vec::with_capacity(nodes.len());
        for (i, np) in nodes.iter().enumerate() {
            match self.lookup(np) {
                Some((key, f)) => {
                    let size = self.size(&key, f, &mut Vec::new())?;
                    let total = self.expanded.get().saturating_add(size);
                    if total > MAX_EXPANDED_NODES {
                        let label = if np.name.is_empty() { np.op_type.clone() } else { np.name.clone() };
                        return Err(OnnxError::Node {
                            node: label,
                            op: np.op_type.clone(),
                            reason: format!(
                                "expanding local function '{}' would make the model's calls {total} nodes or more, over Kiln's limit of {MAX_EXPANDED_NODES}",
                                display(&key)
                            ),
                        });
                    }
                    self.expanded.set(total);
                    self.inline(np, i, &key, f, &mut out)?;
                }
                None => out.push(Expanded { node: Cow::Borrowed(np), opsets: None }),
            }
        }
        Ok(out)
    }

    /// Nodes one call of `f` expands to, counting subgraphs' nodes and expanding nested calls;
    /// refuses recursion (`stack` holds the functions being sized).
    fn size(&self, key: &Key, f: &Function<'m>, stack: &mut Vec<Key>) -> Result<usize, OnnxError> {
        if let Some(&n) = self.sizes.borrow().get(key) {
            return Ok(n);
        }
        if let Some(at) = stack.iter().position(|k| k == key) {
            let chain: Vec<String> = stack[at..].iter().chain([key]).map(display).collect();
            return Err(OnnxError::Function {
                function: display(key),
                reason: format!(
                    "is recursive ({}); Kiln expands local functions inline and cannot expand a recursive one",
                    chain.join(" -> ")
                ),
            });
        }
        if stack.len() >= MAX_CALL_DEPTH {
            let chain: Vec<String> = stack.iter().chain([key]).map(display).collect();
            return Err(OnnxError::Function {
                function: display(key),
                reason: format!("is called {} calls deep ({}), deeper than Kiln's limit of {MAX_CALL_DEPTH}", stack.len(), chain.join(" -> ")),
            });
        }
        stack.push(key.clone());
        let mut n = 0usize;
        for body in &f.proto.node {
            n = n.saturating_add(self.node_size(body, stack)?);
        }
        stack.pop();
        self.sizes.borrow_mut().insert(key.clone(), n);
        Ok(n)
    }

    fn node_size(&self, np: &NodeProto, stack: &mut Vec<Key>) -> Result<usize, OnnxError> {
        let mut n = match self.lookup(np) {
            Some((key, f)) => self.size(&key, f, stack)?,
            None => 1,
        };
        for a in &np.attribute {
            for g in a.g.iter().chain(&a.graphs) {
                for inner in &g.node {
                    n = n.saturating_add(self.node_size(inner, stack)?);
                }
            }
        }
        Ok(n)
    }

    /// Appends the body of `f`, called by `call` (node `index` of its graph), to `out`. The
    /// call has been sized, so it is not recursive.
    fn inline<'a>(
        &'a self,
        call: &NodeProto,
        index: usize,
        key: &Key,
        f: &'a Function<'m>,
        out: &mut Vec<Expanded<'a>>,
    ) -> Result<(), OnnxError> {
        let fp = f.proto;
        let fname = display(key);
        let label = if call.name.is_empty() { call.op_type.clone() } else { call.name.clone() };
        let call_err = |reason: String| OnnxError::Node { node: label.clone(), op: call.op_type.clone(), reason };
        if call.input.len() > fp.input.len() || call.output.len() > fp.output.len() {
            return Err(call_err(format!(
                "calls local function '{}' with {} inputs and {} outputs, but it declares {} and {}",
                fname,
                call.input.len(),
                call.output.len(),
                fp.input.len(),
                fp.output.len()
            )));
        }
        // Attribute values: the function's defaults, overridden by the call's.
        let mut attrs: HashMap<&str, &AttributeProto> = fp.attribute_proto.iter().map(|a| (a.name.as_str(), a)).collect();
        attrs.extend(call.attribute.iter().map(|a| (a.name.as_str(), a)));

        let base = if call.name.is_empty() { format!("{}_{index}", call.op_type) } else { call.name.clone() };
        let prefix = self.reserve_prefix(&base, &f.internal);
        let mut map: HashMap<&str, &str> = HashMap::new();
        for (i, formal) in fp.input.iter().enumerate() {
            map.insert(formal, call.input.get(i).map_or("", String::as_str));
        }
        for (formal, actual) in fp.output.iter().zip(&call.output) {
            if !actual.is_empty() {
                map.entry(formal).or_insert(actual);
            }
        }
        let rename = |name: &str| -> String {
            match map.get(name) {
                Some(actual) => (*actual).to_string(),
                None if name.is_empty() => String::new(),
                None => format!("{prefix}{name}"),
            }
        };

        let mut produced = HashSet::new();
        for (j, body) in fp.node.iter().enumerate() {
            produced.extend(body.output.iter().map(String::as_str));
            let mut n = body.clone();
            rename_node(&mut n, &rename, &prefix);
            n.name = if body.name.is_empty() { format!("{prefix}{}_{j}", body.op_type) } else { format!("{prefix}{}", body.name) };
            substitute(&mut n.attribute, &attrs);
            match self.lookup(&n) {
                Some((inner_key, g)) => self.inline(&n, j, &inner_key, g, out)?,
                None => out.push(Expanded { node: Cow::Owned(n), opsets: Some(&f.opsets) }),
            }
        }

        // A formal output no body node writes: it must be a formal input passed straight through.
        for (k, formal) in fp.output.iter().enumerate() {
            if produced.contains(formal.as_str()) {
                continue;
            }
            if !fp.input.contains(formal) {
                return Err(OnnxError::Function {
                    function: fname,
                    reason: format!("output '{formal}' is not written by any node of its body"),
                });
            }
            let actual = call.output.get(k).map_or("", String::as_str);
            if !actual.is_empty() {
                let mut id = NodeProto::new();
                id.name = format!("{prefix}{formal}_passthrough");
                id.op_type = "Identity".into();
                id.input.push(rename(formal));
                id.output.push(actual.to_string());
                out.push(Expanded { node: Cow::Owned(id), opsets: Some(&f.opsets) });
            }
        }
        Ok(())
    }

    /// `<base>/`, or `<base>#k/` for the first k at which no `<prefix><internal name>` is
    /// taken; the names it yields are then taken.
    fn reserve_prefix(&self, base: &str, internal: &[String]) -> String {
        let mut taken = self.taken.borrow_mut();
        let mut k = 0usize;
        loop {
            let prefix = if k == 0 { format!("{base}/") } else { format!("{base}#{k}/") };
            if internal.iter().all(|n| !taken.contains(&format!("{prefix}{n}"))) {
                taken.extend(internal.iter().map(|n| format!("{prefix}{n}")));
                return prefix;
            }
            k += 1;
        }
    }
}

/// `domain::name` (`:overload` appended when there is one).
fn display(key: &Key) -> String {
    let (domain, name, overload) = key;
    let mut s = if domain.is_empty() { name.clone() } else { format!("{domain}::{name}") };
    if !overload.is_empty() {
        s.push(':');
        s.push_str(overload);
    }
    s
}

/// Renames a body node's values, and those of its subgraphs, with `rename`; names the
/// subgraphs' nodes under `prefix`.
fn rename_node(n: &mut NodeProto, rename: &impl Fn(&str) -> String, prefix: &str) {
    for v in n.input.iter_mut().chain(n.output.iter_mut()) {
        *v = rename(v);
    }
    for a in &mut n.attribute {
        // Attribute references carry no graph of the body's own; their values come from the
        // caller, whose names they keep.
        if !a.ref_attr_name.is_empty() {
            continue;
        }
        if let Some(g) = a.g.as_mut() {
            rename_graph(g, rename, prefix);
        }
        for g in &mut a.graphs {
            rename_graph(g, rename, prefix);
        }
    }
}

fn rename_graph(g: &mut GraphProto, rename: &impl Fn(&str) -> String, prefix: &str) {
    for vi in g.input.iter_mut().chain(g.output.iter_mut()).chain(g.value_info.iter_mut()) {
        vi.name = rename(&vi.name);
    }
    for t in &mut g.initializer {
        t.name = rename(&t.name);
    }
    for sp in &mut g.sparse_initializer {
        if let Some(v) = sp.values.as_mut() {
            v.name = rename(&v.name);
        }
    }
    for (j, n) in g.node.iter_mut().enumerate() {
        rename_node(n, rename, prefix);
        n.name = if n.name.is_empty() { format!("{prefix}{}_{j}", n.op_type) } else { format!("{prefix}{}", n.name) };
    }
}

/// Replaces attribute references (here and in subgraphs) by the values in `given`; a
/// reference with no value is dropped, as if the attribute were not set.
fn substitute(attrs: &mut Vec<AttributeProto>, given: &HashMap<&str, &AttributeProto>) {
    attrs.retain_mut(|a| {
        if a.ref_attr_name.is_empty() {
            if let Some(g) = a.g.as_mut() {
                substitute_graph(g, given);
            }
            for g in &mut a.graphs {
                substitute_graph(g, given);
            }
            return true;
        }
        match given.get(a.ref_attr_name.as_str()) {
            Some(value) => {
                let name = std::mem::take(&mut a.name);
                *a = (*value).clone();
                a.name = name;
                true
            }
            None => false,
        }
    });
}

fn substitute_graph(g: &mut GraphProto, given: &HashMap<&str, &AttributeProto>) {
    for n in &mut g.node {
        substitute(&mut n.attribute, given);
    }
}

/// Every value name a node and its subgraphs mention.
fn node_names(n: &NodeProto, out: &mut HashSet<String>) {
    out.extend(n.input.iter().chain(&n.output).cloned());
    for a in &n.attribute {
        if let Some(g) = a.g.as_ref() {
            graph_names(g, out);
        }
        for g in &a.graphs {
            graph_names(g, out);
        }
    }
}

fn graph_names(g: &GraphProto, out: &mut HashSet<String>) {
    out.extend(g.input.iter().chain(&g.output).chain(&g.value_info).map(|vi| vi.name.clone()));
    out.extend(g.initializer.iter().map(|t| t.name.clone()));
    out.extend(g.sparse_initializer.iter().filter_map(|sp| sp.values.as_ref()).map(|t| t.name.clone()));
    for n in &g.node {
        node_names(n, out);
    }
}
