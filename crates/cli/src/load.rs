use anyhow::Context;
use kiln_ir::Model;
use kiln_pipeline::Runnable;
use std::path::Path;

/// Imports a model (an .onnx file, or a Hugging Face folder / .safetensors file with
/// config.json beside it) with the reference executor's op set, so unsupported ops are marked.
pub fn model(path: &Path) -> anyhow::Result<Model> {
    Ok(model_with(path, None)?.0)
}

/// [`model`], with initializers rebound from a safetensors checkpoint (`--weights`); the
/// rebinding report is printed to stderr.
pub fn model_with(path: &Path, weights: Option<&Path>) -> anyhow::Result<(Model, Option<kiln_hf::RebindReport>)> {
    exists(path)?;
    if let Some(w) = weights {
        exists(w)?;
    }
    if path.is_dir() && !kiln_hf::is_hf_model(path) {
        anyhow::bail!("{} is a folder without config.json; give the path of the .onnx file (or of a Hugging Face model folder)", path.display());
    }
    let (m, report) =
        kiln_pipeline::load_model(path, &kiln_reference::op_set(), weights).with_context(|| format!("cannot import {}", path.display()))?;
    if let (Some(r), Some(w)) = (&report, weights) {
        print_rebind(w, r);
    }
    Ok((m, report))
}

/// The rebinding report, on stderr (stdout may be JSON).
pub fn print_rebind(weights: &Path, r: &kiln_hf::RebindReport) {
    eprintln!("weights {}: {}", weights.display(), r.summary());
    for (name, graph, file) in &r.shape_mismatch {
        eprintln!("  shape mismatch, kept the graph's: '{name}' graph {graph:?}, checkpoint {file:?}");
    }
    for (name, graph, file) in &r.dtype_mismatch {
        eprintln!("  element type mismatch, kept the graph's: '{name}' graph {graph}, checkpoint {file}");
    }
    for (name, from, to) in &r.converted {
        eprintln!("  converted '{name}' from {from} to {to}");
    }
    let show = |what: &str, names: &[String]| {
        if !names.is_empty() {
            let more = if names.len() > 5 { format!(" and {} more", names.len() - 5) } else { String::new() };
            eprintln!("  {what}: {}{more}", names.iter().take(5).map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", "));
        }
    };
    show("checkpoint tensors with no initializer of that name", &r.unmatched);
    show("initializers the checkpoint does not have (unchanged)", &r.not_in_checkpoint);
}

/// A model (run on the reference executor) or a folder written by `kiln compile`.
pub fn runnable(path: &Path) -> anyhow::Result<Runnable> {
    runnable_with(path, None)
}

/// [`runnable`], with a model's initializers rebound from `weights`.
pub fn runnable_with(path: &Path, weights: Option<&Path>) -> anyhow::Result<Runnable> {
    exists(path)?;
    if let Some(w) = weights {
        exists(w)?;
    }
    let (r, report) = Runnable::open_with(path, weights).with_context(|| format!("cannot load {}", path.display()))?;
    if let (Some(rep), Some(w)) = (&report, weights) {
        print_rebind(w, rep);
    }
    let unsupported = r.unsupported();
    if !unsupported.is_empty() {
        anyhow::bail!(
            "the reference executor does not support {} op type(s) used by this model: {} (see `kiln inspect {}`)",
            unsupported.len(),
            unsupported.join(", "),
            path.display()
        );
    }
    Ok(r)
}

fn exists(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    Ok(())
}
