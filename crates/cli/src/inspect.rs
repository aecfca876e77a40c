use crate::load;
use kiln_ir::{Graph, Model, ValueId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Show a model's inputs, outputs, opsets, op histogram, parameters and op coverage.
///
/// The coverage table lists every op the model uses and whether Kiln's reference executor
/// supports it at the model's opset, so all unsupported ops are known at once.
#[derive(clap::Args)]
pub struct Args {
    /// The model: .onnx, a Hugging Face folder (config.json + safetensors), or a .safetensors file.
    model: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also print the full IR text dump (every node, attribute and initializer summary).
    #[arg(long)]
    dump: bool,
}

#[derive(Serialize)]
struct Io {
    name: String,
    dtype: String,
    shape: String,
}

#[derive(Serialize)]
struct OpRow {
    op: String,
    count: usize,
    supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    file_bytes: u64,
    ir_version: i64,
    producer: String,
    opsets: BTreeMap<String, i64>,
    metadata: BTreeMap<String, String>,
    inputs: Vec<Io>,
    outputs: Vec<Io>,
    nodes: usize,
    parameters: usize,
    parameter_bytes: usize,
    initializers: usize,
    ops: Vec<OpRow>,
    unsupported: Vec<String>,
}

fn io(g: &Graph, ids: &[ValueId]) -> Vec<Io> {
    ids.iter()
        .map(|&i| {
            let v = g.value(i);
            Io {
                name: v.name.clone(),
                dtype: v.dtype.map_or("?".into(), |d| d.to_string()),
                shape: v.shape.as_ref().map_or("[?]".into(), |s| s.to_string()),
            }
        })
        .collect()
}

fn build(path: &std::path::Path, m: &Model) -> Report {
    let mut ops: BTreeMap<String, OpRow> = BTreeMap::new();
    for n in m.all_nodes() {
        let row = ops.entry(n.qualified_op()).or_insert_with(|| OpRow {
            op: n.qualified_op(),
            count: 0,
            supported: n.unsupported.is_none(),
            reason: n.unsupported.clone(),
        });
        row.count += 1;
    }
    let mut ops: Vec<OpRow> = ops.into_values().collect();
    ops.sort_by(|a, b| b.count.cmp(&a.count).then(a.op.cmp(&b.op)));
    let unsupported = ops.iter().filter(|r| !r.supported).map(|r| r.op.clone()).collect();
    let g = &m.graph;
    Report {
        model: path.display().to_string(),
        file_bytes: file_bytes(path),
        ir_version: m.ir_version,
        producer: format!("{} {}", m.producer_name, m.producer_version).trim().to_string(),
        opsets: m.opsets.iter().map(|(d, v)| (if d.is_empty() { "ai.onnx".into() } else { d.clone() }, *v)).collect(),
        metadata: m.metadata.clone(),
        inputs: io(g, &g.runtime_inputs()),
        outputs: io(g, &g.outputs),
        nodes: m.all_nodes().len(),
        parameters: g.parameter_count(),
        parameter_bytes: g.parameter_bytes(),
        initializers: g.initializers.len(),
        ops,
        unsupported,
    }
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let m = load::model(&a.model)?;
    let r = build(&a.model, &m);
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        if a.dump {
            v["dump"] = serde_json::Value::String(kiln_ir::dump(&m));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", text(&r));
    if a.dump {
        println!("\n{}", kiln_ir::dump(&m));
    }
    Ok(())
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn text(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "model      {} ({} bytes)", r.model, r.file_bytes);
    if !r.producer.is_empty() {
        let _ = writeln!(s, "producer   {}", r.producer);
    }
    let opsets: Vec<String> = r.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
    let _ = writeln!(s, "format     ONNX IR version {}, opsets: {}", r.ir_version, opsets.join(", "));
    for (k, v) in &r.metadata {
        let _ = writeln!(s, "metadata   {k} = {}", v.escape_debug());
    }
    let width = r.inputs.iter().chain(&r.outputs).map(|i| i.name.len()).max().unwrap_or(0);
    let _ = writeln!(s, "\ninputs");
    for i in &r.inputs {
        let _ = writeln!(s, "  {:width$}  {}{}", i.name, i.dtype, i.shape);
    }
    let _ = writeln!(s, "outputs");
    for o in &r.outputs {
        let _ = writeln!(s, "  {:width$}  {}{}", o.name, o.dtype, o.shape);
    }
    let _ = writeln!(
        s,
        "\nparameters {} ({} bytes in {} initializers)",
        human(r.parameters),
        human(r.parameter_bytes),
        r.initializers
    );
    let _ = writeln!(s, "nodes      {} ({} op types)\n", r.nodes, r.ops.len());
    let w = r.ops.iter().map(|o| o.op.len()).max().unwrap_or(2).max(2);
    let _ = writeln!(s, "  {:w$}  {:>6}  reference executor", "op", "count");
    for o in &r.ops {
        let status = match &o.reason {
            None => "supported".to_string(),
            Some(why) => format!("UNSUPPORTED ({why})"),
        };
        let _ = writeln!(s, "  {:w$}  {:>6}  {status}", o.op, o.count);
    }
    if r.unsupported.is_empty() {
        let _ = writeln!(s, "\nevery op is supported by the reference executor");
    } else {
        let _ = writeln!(
            s,
            "\n{} unsupported op type(s): {}\n`kiln run` cannot execute this model until they are implemented.",
            r.unsupported.len(),
            r.unsupported.join(", ")
        );
    }
    s
}

/// The file's size; for a Hugging Face folder, the size of the files directly in it.
fn file_bytes(path: &std::path::Path) -> u64 {
    if !path.is_dir() {
        return std::fs::metadata(path).map_or(0, |m| m.len());
    }
    std::fs::read_dir(path).map_or(0, |d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
}
