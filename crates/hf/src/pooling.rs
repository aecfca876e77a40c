//! The sentence-embedding head: pooling over the sequence (mean, CLS, max, mean / sqrt(len)),
//! and L2 normalisation, as sentence-transformers' `1_Pooling/config.json` and `modules.json`
//! describe them.

use crate::HfError;
use crate::encoder::mask_f32;
use crate::graph::{GraphBuilder, ints};
use kiln_ir::{Attr, ValueId};
use serde_json::Value;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// No sentence embedding: the model outputs `last_hidden_state` only.
    None,
    /// Mean of the token vectors where the attention mask is 1.
    Mean,
    /// The first ([CLS]) token's vector.
    Cls,
    /// Element-wise max over unmasked tokens.
    Max,
    /// Sum of unmasked tokens / sqrt(count).
    MeanSqrtLen,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::None => "none",
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean_sqrt_len",
        }
    }

    pub fn from_name(s: &str) -> Option<Pooling> {
        [Pooling::None, Pooling::Mean, Pooling::Cls, Pooling::Max, Pooling::MeanSqrtLen].into_iter().find(|p| p.name() == s)
    }
}

/// What to put after the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub pooling: Pooling,
    /// L2-normalise the pooled vector.
    pub normalize: bool,
}

impl Default for Head {
    fn default() -> Self {
        Head { pooling: Pooling::None, normalize: false }
    }
}

/// The head a sentence-transformers folder describes: `modules.json` lists a Pooling module (its
/// folder holds `config.json` with `pooling_mode_*`) and maybe a Normalize module. Without
/// `modules.json`, a `1_Pooling/config.json` alone is read; with neither, no head.
pub fn read_head(dir: &Path) -> Result<Head, HfError> {
    let modules_path = dir.join("modules.json");
    let mut pooling_dir = None;
    let mut normalize = false;
    if modules_path.is_file() {
        let modules = read_json(&modules_path)?;
        let list = modules.as_array().ok_or_else(|| HfError::Pooling { path: modules_path.clone(), reason: "is not a JSON list".into() })?;
        for m in list {
            let ty = m.get("type").and_then(Value::as_str).unwrap_or_default();
            if ty.ends_with(".Pooling") {
                pooling_dir = Some(dir.join(m.get("path").and_then(Value::as_str).unwrap_or("1_Pooling")));
            } else if ty.ends_with(".Normalize") {
                normalize = true;
            }
        }
    } else if dir.join("1_Pooling").is_dir() {
        pooling_dir = Some(dir.join("1_Pooling"));
    }
    let Some(pdir) = pooling_dir else { return Ok(Head { pooling: Pooling::None, normalize }) };
    let path = pdir.join("config.json");
    let cfg = read_json(&path)?;
    let on = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
    let modes = [
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_mean_tokens", Pooling::Mean),
        ("pooling_mode_max_tokens", Pooling::Max),
        ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
    ];
    let chosen: Vec<(&str, Pooling)> = modes.into_iter().filter(|(k, _)| on(k)).collect();
    if let Some(k) = ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"].into_iter().find(|k| on(k)) {
        return Err(HfError::Pooling { path, reason: format!("{k} is not supported (Kiln pools by cls, mean, max or mean_sqrt_len)") });
    }
    match chosen.as_slice() {
        [] => Err(HfError::Pooling { path, reason: "turns no pooling mode on".into() }),
        [(_, p)] => Ok(Head { pooling: *p, normalize }),
        many => Err(HfError::Pooling {
            path,
            reason: format!(
                "turns on {} modes ({}); Kiln builds one (choose with --pooling)",
                many.len(),
                many.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

fn read_json(path: &Path) -> Result<Value, HfError> {
    let text = std::fs::read(path).map_err(|source| HfError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&text).map_err(|e| HfError::Json { path: path.to_path_buf(), reason: e.to_string() })
}

/// The pooled (and maybe normalised) [batch, hidden] embedding of `hidden` [batch, sequence,
/// hidden]; None when the head pools nothing.
pub fn add_head(b: &mut GraphBuilder, head: Head, hidden: ValueId, attention_mask: ValueId) -> Option<ValueId> {
    b.set_scope("pooling");
    let pooled = match head.pooling {
        Pooling::None => return None,
        Pooling::Cls => {
            let zero = b.scalar_i64("zero_i64", 0);
            b.op("Gather", &[hidden, zero], vec![("axis", Attr::Int(1))])
        }
        Pooling::Mean | Pooling::MeanSqrtLen => {
            let (sum, count) = masked_sum(b, hidden, attention_mask);
            let count = if head.pooling == Pooling::MeanSqrtLen { b.op("Sqrt", &[count], vec![]) } else { count };
            b.op("Div", &[sum, count], vec![])
        }
        Pooling::Max => {
            // Padded tokens are set to -1e9 first (sentence-transformers' rule).
            let m = token_mask(b, attention_mask);
            let one = b.scalar_f32("one", 1.0);
            let low = b.scalar_f32("minus_1e9", -1e9);
            let inv = b.op("Sub", &[one, m], vec![]);
            let fill = b.op("Mul", &[inv, low], vec![]);
            let kept = b.op("Mul", &[hidden, m], vec![]);
            let x = b.op("Add", &[kept, fill], vec![]);
            b.op("ReduceMax", &[x], vec![("axes", ints(&[1])), ("keepdims", Attr::Int(0))])
        }
    };
    Some(if head.normalize { l2_normalize(b, pooled) } else { pooled })
}

/// The mask as f32 [batch, sequence, 1].
fn token_mask(b: &mut GraphBuilder, attention_mask: ValueId) -> ValueId {
    let m = mask_f32(b, attention_mask);
    let axes = b.const_i64("axes_2", &[2]);
    b.op("Unsqueeze", &[m, axes], vec![])
}

/// (sum of unmasked token vectors [batch, hidden], max(count, 1e-9) [batch, 1]).
fn masked_sum(b: &mut GraphBuilder, hidden: ValueId, attention_mask: ValueId) -> (ValueId, ValueId) {
    let m = token_mask(b, attention_mask);
    let axes = b.const_i64("axes_1", &[1]);
    let x = b.op("Mul", &[hidden, m], vec![]);
    let sum = b.op("ReduceSum", &[x, axes], vec![("keepdims", Attr::Int(0))]);
    let count = b.op("ReduceSum", &[m, axes], vec![("keepdims", Attr::Int(0))]);
    let tiny = b.scalar_f32("count_min", 1e-9);
    (sum, b.op("Max", &[count, tiny], vec![]))
}

/// x / max(||x||_2, 1e-12) over the last axis (torch.nn.functional.normalize).
fn l2_normalize(b: &mut GraphBuilder, x: ValueId) -> ValueId {
    let norm = b.op("ReduceL2", &[x], vec![("axes", ints(&[-1])), ("keepdims", Attr::Int(1))]);
    let eps = b.scalar_f32("norm_eps", 1e-12);
    let norm = b.op("Max", &[norm, eps], vec![]);
    b.op("Div", &[x, norm], vec![])
}
