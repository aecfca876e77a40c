//! The architecture builders, keyed by config.json's `model_type`. A new family (a LLaMA-style
//! decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU) is one more file implementing
//! [`Architecture`] and one more line in [`architectures`]; no other builder changes.

use crate::graph::GraphBuilder;
use crate::{BuildOptions, Config, HfError, pooling::Head};
use kiln_safetensors::Checkpoint;

/// What a builder reads.
pub struct Cx<'a> {
    pub config: &'a Config,
    pub checkpoint: &'a Checkpoint,
    /// The sentence-embedding head to add after an encoder (from the options or the folder).
    pub head: Head,
    pub opts: &'a BuildOptions,
}

/// One model family.
pub trait Architecture: Sync {
    /// The `model_type` values this builder handles.
    fn model_types(&self) -> &'static [&'static str];
    /// Adds the graph's inputs, body and outputs to `b`.
    fn build(&self, cx: &Cx, b: &mut GraphBuilder) -> Result<(), HfError>;
}

/// Every builder Kiln has.
pub fn architectures() -> &'static [&'static dyn Architecture] {
    &[&crate::bert::Bert, &crate::roberta::Roberta, &crate::distilbert::DistilBert]
}

/// Every `model_type` Kiln builds, sorted.
pub fn known_model_types() -> Vec<&'static str> {
    let mut v: Vec<&str> = architectures().iter().flat_map(|a| a.model_types().iter().copied()).collect();
    v.sort_unstable();
    v
}

/// The builder for `model_type`.
pub fn find(model_type: &str) -> Result<&'static dyn Architecture, HfError> {
    architectures()
        .iter()
        .copied()
        .find(|a| a.model_types().contains(&model_type))
        .ok_or_else(|| HfError::UnknownModelType { found: model_type.to_string(), known: known_model_types().join(", ") })
}
