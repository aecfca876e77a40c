use anyhow::Context;
use kiln_ir::Model;
use std::path::Path;

/// Imports a model file with the reference executor's op set, so unsupported ops are marked.
pub fn model(path: &Path) -> anyhow::Result<Model> {
    if !path.exists() {
        anyhow::bail!("model file {} does not exist", path.display());
    }
    if path.is_dir() {
        anyhow::bail!("{} is a folder; give the path of the .onnx file", path.display());
    }
    kiln_onnx::load(path, &kiln_reference::op_set()).with_context(|| format!("cannot import {}", path.display()))
}
