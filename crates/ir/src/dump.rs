use crate::{Attr, Graph, Model, ValueId};
use kiln_tensor::Tensor;
use std::fmt::Write;

/// A stable, readable text form of a model, used by snapshot tests and `kiln inspect --dump`.
/// Nodes appear in file order; attributes sorted by name; tensors of up to 8 elements are
/// printed in full, larger ones as a summary.
pub fn dump(model: &Model) -> String {
    let mut out = String::new();
    let opsets: Vec<String> = model
        .opsets
        .iter()
        .map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    let _ = writeln!(out, "model ir_version={} opsets=[{}]", model.ir_version, opsets.join(", "));
    if !model.producer_name.is_empty() {
        let _ = writeln!(out, "producer {:?} {:?}", model.producer_name, model.producer_version);
    }
    for (k, v) in &model.metadata {
        let _ = writeln!(out, "meta {k:?} = {v:?}");
    }
    dump_graph(&model.graph, 0, &mut out);
    out
}

fn value(g: &Graph, v: ValueId) -> String {
    format!("%{}", g.values.get(v.0).map_or("<bad id>", |i| i.name.as_str()))
}

fn typed(g: &Graph, v: ValueId) -> String {
    let Some(info) = g.values.get(v.0) else { return "%<bad id>".into() };
    let dt = info.dtype.map_or("?".to_string(), |d| d.to_string());
    let sh = info.shape.as_ref().map_or("[?]".to_string(), |s| s.to_string());
    format!("%{}: {dt}{sh}", info.name)
}

fn tensor_text(t: &Tensor) -> String {
    let shape = format!("{:?}", t.shape()).replace(' ', "");
    if t.len() <= 8 {
        let vals = match t.data() {
            kiln_tensor::Data::String(s) => format!("{s:?}"),
            _ => {
                let v = t.to_f64_vec().unwrap_or_default();
                let parts: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
                format!("[{}]", parts.join(", "))
            }
        };
        format!("{}{shape} {vals}", t.dtype())
    } else {
        format!("{}{shape} <{} values>", t.dtype(), t.len())
    }
}

fn dump_graph(g: &Graph, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    let _ = writeln!(out, "{pad}graph {:?} {{", g.name);
    for &i in &g.inputs {
        let default = if g.initializers.contains_key(&i) { " (has default)" } else { "" };
        let _ = writeln!(out, "{pad}  input {}{default}", typed(g, i));
    }
    for (&i, t) in &g.initializers {
        let _ = writeln!(out, "{pad}  init {} = {}", value(g, i), tensor_text(t));
    }
    for n in &g.nodes {
        let outs: Vec<String> = n.outputs.iter().map(|o| o.map_or("_".into(), |v| typed(g, v))).collect();
        let ins: Vec<String> = n.inputs.iter().map(|i| i.map_or("_".into(), |v| value(g, v))).collect();
        let op = match &n.unsupported {
            Some(_) => format!("Unsupported<{}>", n.qualified_op()),
            None => n.qualified_op(),
        };
        let mut attrs = Vec::new();
        let mut subgraphs = Vec::new();
        for (k, a) in &n.attrs {
            match a {
                Attr::Graph(s) => subgraphs.push((k.clone(), vec![s.as_ref()])),
                Attr::Graphs(s) => subgraphs.push((k.clone(), s.iter().collect())),
                other => attrs.push(format!("{k}={}", attr_text(other))),
            }
        }
        let attrs = if attrs.is_empty() { String::new() } else { format!(" {{{}}}", attrs.join(", ")) };
        let name = if n.name.is_empty() { String::new() } else { format!("  # {}", n.name) };
        let _ = writeln!(out, "{pad}  {} = {op}({}){attrs}{name}", outs.join(", "), ins.join(", "));
        for (k, subs) in subgraphs {
            for s in subs {
                let _ = writeln!(out, "{pad}    {k}:");
                dump_graph(s, indent + 3, out);
            }
        }
    }
    let outs: Vec<String> = g.outputs.iter().map(|&o| typed(g, o)).collect();
    let _ = writeln!(out, "{pad}  output {}", outs.join(", "));
    let _ = writeln!(out, "{pad}}}");
}

fn attr_text(a: &Attr) -> String {
    match a {
        Attr::Float(f) => format!("{f:?}"),
        Attr::Int(i) => i.to_string(),
        Attr::String(s) => format!("{:?}", String::from_utf8_lossy(s)),
        Attr::Tensor(t) => tensor_text(t),
        Attr::Floats(v) => format!("{v:?}"),
        Attr::Ints(v) => format!("{v:?}").replace(' ', ""),
        Attr::Strings(v) => format!("{:?}", v.iter().map(|s| String::from_utf8_lossy(s)).collect::<Vec<_>>()),
        Attr::Tensors(v) => format!("[{}]", v.iter().map(tensor_text).collect::<Vec<_>>().join(", ")),
        Attr::Type(d) => format!("type({})", d.map_or("?".to_string(), |d| d.to_string())),
        Attr::Graph(_) | Attr::Graphs(_) => "<graph>".into(),
    }
}
