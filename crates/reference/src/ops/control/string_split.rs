//! StringSplit: splits each string by `delimiter` (or, when it is empty or absent, by runs of
//! whitespace, ignoring leading and trailing whitespace), at most `maxsplit` times. Outputs the
//! pieces padded with "" to the largest count along a new last axis, and the count per string.

use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

pub fn string_split(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let Data::String(strs) = x.data() else { bail!("StringSplit needs a string tensor, got {}", x.dtype()) };
    let delimiter = ctx.attr_s("delimiter", "");
    let maxsplit = match ctx.node.attr_int("maxsplit") {
        None => None,
        Some(m) if m >= 0 => Some(m as usize),
        Some(m) => bail!("attribute 'maxsplit' must be non-negative, got {m}"),
    };
    let pieces: Vec<Vec<String>> = strs.iter().map(|s| split_one(s, delimiter, maxsplit)).collect();
    let width = pieces.iter().map(Vec::len).max().unwrap_or(0);
    let mut flat = Vec::with_capacity(pieces.len() * width);
    for p in &pieces {
        flat.extend(p.iter().cloned());
        flat.extend(std::iter::repeat_n(String::new(), width - p.len()));
    }
    let mut shape = x.shape().to_vec();
    shape.push(width);
    let counts: Vec<i64> = pieces.iter().map(|p| p.len() as i64).collect();
    Ok(vec![Tensor::new(shape, Data::String(flat))?, Tensor::from_vec(x.shape().to_vec(), counts)?])
}

fn split_one(s: &str, delimiter: &str, maxsplit: Option<usize>) -> Vec<String> {
    let limit = maxsplit.map_or(usize::MAX, |m| m.saturating_add(1));
    if !delimiter.is_empty() {
        return s.splitn(limit, delimiter).map(str::to_string).collect();
    }
    // Whitespace mode: runs of whitespace separate; the last piece keeps the rest of the
    // string (left-trimmed) once `maxsplit` splits are made.
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        if out.len() + 1 == limit {
            out.push(rest.trim_end().to_string());
            break;
        }
        match rest.find(char::is_whitespace) {
            Some(end) => {
                out.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            None => {
                out.push(rest.to_string());
                break;
            }
        }
    }
    out
}
