use anyhow::Context;
use kiln_ir::Model;
use kiln_pipeline::Runnable;
use std::path::Path;

/// Imports a model file with the reference executor's op set, so unsupported ops are marked.
pub fn model(path: &Path) -> anyhow::Result<Model> {
    exists(path)?;
    if path.is_dir() {
        anyhow::bail!("{} is a folder; give the path of the .onnx file", path.display());
    }
    kiln_onnx::load(path, &kiln_reference::op_set()).with_context(|| format!("cannot import {}", path.display()))
}

/// A model file (run on the reference executor) or a folder written by `kiln compile`.
pub fn runnable(path: &Path) -> anyhow::Result<Runnable> {
    exists(path)?;
    let r = Runnable::open(path).with_context(|| format!("cannot load {}", path.display()))?;
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
