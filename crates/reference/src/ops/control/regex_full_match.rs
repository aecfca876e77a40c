//! RegexFullMatch: whether each string matches `pattern` (RE2 syntax) as a whole.
//! Uses the `regex` crate, whose syntax is RE2's; `\w`, `\d` and `\s` are Unicode-aware there.

use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

pub fn regex_full_match(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let Data::String(strs) = x.data() else { bail!("RegexFullMatch needs a string tensor, got {}", x.dtype()) };
    let Some(pattern) = ctx.node.attr_str("pattern") else { bail!("attribute 'pattern' is required") };
    let re = regex::Regex::new(&format!(r"\A(?:{pattern})\z"))
        .map_err(|e| OpError::Invalid(format!("attribute 'pattern' is not a valid regular expression: {e}")))?;
    let out: Vec<bool> = strs.iter().map(|s| re.is_match(s)).collect();
    Ok(vec![Tensor::from_vec(x.shape().to_vec(), out)?])
}
