//! Hugging Face model folders (config.json + safetensors weights) built into the Kiln IR, and
//! weight rebinding onto existing graphs.
//!
//! [`build`] reads `config.json`, picks the architecture builder by `model_type` (the
//! [`registry`]: "bert", "roberta", "xlm-roberta", "camembert", "distilbert"), and writes the
//! model as plain ai.onnx ops at opset 17 (Gather, MatMul, Softmax, LayerNormalization, Erf or
//! Tanh GELU, ReduceSum, ...) so the reference executor, Kiln's fusion passes and the ONNX
//! export all read it. Inputs `input_ids`, `attention_mask` (and `token_type_ids` where the
//! model has token types) are i64 [batch, sequence]; outputs `last_hidden_state` and, when a
//! pooling head is configured (sentence-transformers' `modules.json` / `1_Pooling`, or
//! [`BuildOptions::head`]), `sentence_embedding`. The graph computes in f32: f16/bf16 weights
//! are widened when read. Weights keep their checkpoint names and layouts (linear weights stay
//! [out, in] behind a Transpose that `kiln compile` folds), so [`rebind`] maps a fine-tuned
//! checkpoint onto a built or exported graph by name.
//!
//! Architecture invariant: knows config.json, checkpoints and the IR; nothing of ONNX files,
//! executors or targets. One builder per family, each a file; builders share the encoder
//! maths (`encoder.rs`) and the pooling head (`pooling.rs`), never each other's internals
//! beyond what a family reuses by name (RoBERTa is BERT with other position ids).

mod bert;
mod config;
mod distilbert;
mod encoder;
mod error;
pub mod graph;
pub mod pooling;
mod rebind;
pub mod registry;
mod roberta;
mod weights;

pub use config::Config;
pub use encoder::Activation;
pub use error::HfError;
pub use pooling::{Head, Pooling};
pub use rebind::{RebindReport, rebind};
pub use weights::Weights;

use kiln_ir::{Model, OpSet};
use kiln_safetensors::Checkpoint;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Choices a caller can make over what the folder says.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// The sentence-embedding head; None reads it from the folder (`modules.json`, `1_Pooling/`).
    pub head: Option<Head>,
    /// Whether the graph takes `token_type_ids`; None: when the model has more than one type.
    pub token_type_ids: Option<bool>,
}

/// True when `path` looks like a Hugging Face model: a folder with config.json, a
/// `.safetensors` file, or a shard index.
pub fn is_hf_model(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("config.json").is_file();
    }
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json") || name == "config.json"
}

/// The folder, config file and checkpoint path `path` names (a folder, a weights file, an index
/// or config.json).
fn resolve(path: &Path) -> Result<(PathBuf, PathBuf, PathBuf), HfError> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    let config = dir.join("config.json");
    if !config.is_file() {
        return Err(HfError::NoConfig { path: path.to_path_buf() });
    }
    let is_config = path.file_name().is_some_and(|n| n == "config.json");
    let weights = if path.is_dir() || is_config { dir.clone() } else { path.to_path_buf() };
    Ok((dir, config, weights))
}

/// Builds the model of a Hugging Face folder (or of a weights file with config.json beside it).
/// Nodes outside `ops` are marked unsupported, as the ONNX importer marks them.
pub fn build(path: &Path, opts: &BuildOptions, ops: &OpSet) -> Result<Model, HfError> {
    let (dir, config_path, weights) = resolve(path)?;
    let config = Config::read(&config_path)?;
    // An unknown architecture is said before the weights are opened.
    registry::find(config.model_type()?)?;
    let ck = match Checkpoint::open(&weights) {
        Err(kiln_safetensors::SafetensorsError::NoCheckpoint { .. }) => return Err(HfError::NoWeights { path: weights }),
        other => other?,
    };
    let head = match opts.head {
        Some(h) => h,
        None => pooling::read_head(&dir)?,
    };
    let mut model = build_from(&config, &ck, head, opts, ops)?;
    model.metadata.insert("kiln.source".into(), path.display().to_string());
    Ok(model)
}

/// Builds a model from a parsed config and an open checkpoint.
pub fn build_from(config: &Config, ck: &Checkpoint, head: Head, opts: &BuildOptions, ops: &OpSet) -> Result<Model, HfError> {
    let model_type = config.model_type()?;
    let arch = registry::find(model_type)?;
    let mut b = graph::GraphBuilder::new(model_type);
    let cx = registry::Cx { config, checkpoint: ck, head, opts };
    arch.build(&cx, &mut b)?;
    let metadata = BTreeMap::from([
        ("hf.model_type".to_string(), model_type.to_string()),
        ("hf.pooling".to_string(), head.pooling.name().to_string()),
        ("hf.normalize".to_string(), head.normalize.to_string()),
    ]);
    Ok(b.finish(ops, metadata)?)
}
