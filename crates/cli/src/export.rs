use crate::load;
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;

/// Write a model as an ONNX file: an .onnx model (re-exported, e.g. after --weights), or a
/// Hugging Face model (a folder with config.json and safetensors weights, or a .safetensors
/// file with config.json beside it) built by Kiln.
///
/// The file is written atomically; initializers go to OUT.data beside it when they pass
/// --external-threshold (default 2e9 bytes, under protobuf's 2 GiB limit).
///
/// Examples: kiln export all-MiniLM-L6-v2/ -o minilm.onnx
///           kiln export model.onnx --weights finetuned.safetensors -o tuned.onnx
#[derive(clap::Args)]
pub struct Args {
    /// The model: .onnx, a Hugging Face folder, or a .safetensors file.
    model: PathBuf,
    /// The .onnx file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    out: PathBuf,
    /// Replace initializers by name with the tensors of this safetensors checkpoint first.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Initializer bytes above which they are written as external data (OUT.data).
    #[arg(long, value_name = "BYTES", default_value_t = kiln_onnx::ExportOptions::default().external_threshold)]
    external_threshold: u64,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    output: String,
    bytes: u64,
    external_data: Option<String>,
    external_bytes: Option<u64>,
    external_tensors: Option<usize>,
    nodes: usize,
    initializers: usize,
    rebound: Option<usize>,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let (model, rebind) = load::model_with(&a.model, a.weights.as_deref())?;
    let opts = kiln_onnx::ExportOptions { external_threshold: a.external_threshold, ..Default::default() };
    let done = kiln_onnx::export(&model, &a.out, &opts).with_context(|| format!("cannot export to {}", a.out.display()))?;
    let report = Report {
        model: a.model.display().to_string(),
        output: done.path.display().to_string(),
        bytes: done.model_bytes,
        external_data: done.external.as_ref().map(|(p, _, _)| p.display().to_string()),
        external_bytes: done.external.as_ref().map(|(_, b, _)| *b),
        external_tensors: done.external.as_ref().map(|(_, _, n)| *n),
        nodes: model.graph.nodes.len(),
        initializers: model.graph.initializers.len(),
        rebound: rebind.map(|r| r.matched.len()),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("wrote {} ({} bytes): {} nodes, {} initializers", report.output, report.bytes, report.nodes, report.initializers);
    if let (Some(p), Some(b), Some(n)) = (&report.external_data, report.external_bytes, report.external_tensors) {
        println!("external data: {p} ({b} bytes, {n} tensors)");
    }
    Ok(())
}
