//! The checkpoint as a builder sees it: tensors by their name without the task-model prefix
//! (`bert.`, `roberta.`, ...), checked against the shape the config implies, as f32.

use crate::HfError;
use kiln_safetensors::Checkpoint;
use kiln_tensor::Tensor;

pub struct Weights<'a> {
    ck: &'a Checkpoint,
    prefix: String,
    tried: Vec<String>,
}

impl<'a> Weights<'a> {
    /// Picks the first of `prefixes` under which `probe` exists (a base model saves
    /// `embeddings.word_embeddings.weight`, a task model `bert.embeddings.word_embeddings.weight`).
    pub fn new(ck: &'a Checkpoint, prefixes: &[&str], probe: &str) -> Result<Weights<'a>, HfError> {
        let tried: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        match prefixes.iter().find(|p| ck.contains(&format!("{p}{probe}"))) {
            Some(p) => Ok(Weights { ck, prefix: p.to_string(), tried }),
            None => Err(missing(ck, probe, &tried)),
        }
    }

    /// The prefix in use ("" for a base model).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The checkpoint's own name for `name`.
    pub fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn has(&self, name: &str) -> bool {
        self.ck.contains(&self.full_name(name))
    }

    /// The tensor as f32, checked against `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, HfError> {
        let full = self.full_name(name);
        let info = self.ck.info(&full).ok_or_else(|| missing(self.ck, name, &self.tried))?;
        let found: Vec<usize> = info.shape.iter().map(|&d| d as usize).collect();
        if found != shape {
            return Err(HfError::Shape { name: full, expected: shape.to_vec(), found });
        }
        Ok(self.ck.tensor_f32(&full)?)
    }
}

fn missing(ck: &Checkpoint, name: &str, tried: &[String]) -> HfError {
    let tried = tried.iter().map(|p| if p.is_empty() { "(none)".to_string() } else { format!("'{p}'") }).collect::<Vec<_>>().join(", ");
    HfError::MissingTensor { name: name.to_string(), checkpoint: ck.source().display().to_string(), tried }
}
