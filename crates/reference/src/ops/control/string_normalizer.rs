//! StringNormalizer: drops stopwords (case-sensitively or not) from a [C] or [1, C] string
//! tensor, then changes case (LOWER, UPPER or NONE). An all-dropped input gives one "".

use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};
use std::collections::HashSet;

pub fn string_normalizer(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let Data::String(words) = x.data() else { bail!("StringNormalizer needs a string tensor, got {}", x.dtype()) };
    let two_d = match x.shape() {
        [_] => false,
        [1, _] => true,
        s => bail!("StringNormalizer takes shape [C] or [1, C], got {s:?}"),
    };
    let case_sensitive = ctx.attr_i("is_case_sensitive", 0) != 0;
    let fold = |s: &str| if case_sensitive { s.to_string() } else { s.to_lowercase() };
    let stopwords: HashSet<String> =
        ctx.node.attr("stopwords").and_then(|a| a.as_strings()).unwrap_or_default().iter().map(|s| fold(s)).collect();
    let action = ctx.attr_s("case_change_action", "NONE");
    let change: fn(&str) -> String = match action {
        "NONE" => |s| s.to_string(),
        "LOWER" => str::to_lowercase,
        "UPPER" => str::to_uppercase,
        other => bail!("attribute 'case_change_action' must be LOWER, UPPER or NONE, got '{other}'"),
    };
    let mut kept: Vec<String> = words.iter().filter(|w| !stopwords.contains(&fold(w))).map(|w| change(w)).collect();
    if kept.is_empty() {
        kept.push(String::new());
    }
    let shape = if two_d { vec![1, kept.len()] } else { vec![kept.len()] };
    Ok(vec![Tensor::new(shape, Data::String(kept))?])
}
