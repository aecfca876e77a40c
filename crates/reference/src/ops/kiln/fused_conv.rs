//! kiln::FusedConv: `activation(Conv(X, W, B))`. Inputs and attributes are Conv's, plus the
//! activation attributes of `common::activation`, plus `layout` (string, default "NCHW"):
//! with "NHWC", X and Y are channels-last (`[N, H, W, C]` for 2-D; channels last for any rank)
//! while W keeps ONNX's `[M, C/group, kH, kW]`.

use super::common::{activation, main_attrs, step};
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::Tensor;
use std::collections::BTreeMap;

pub fn fused_conv(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let mut attrs = main_attrs(ctx);
    let layout = match attrs.remove("layout") {
        None => "NCHW".to_string(),
        Some(Attr::String(s)) => String::from_utf8_lossy(&s).into_owned(),
        Some(other) => bail!("attribute 'layout' must be a string, got {other:?}"),
    };
    match layout.as_str() {
        "NCHW" => {
            let y = step(ctx, "Conv", attrs, inputs)?;
            Ok(vec![activation(ctx, y)?])
        }
        "NHWC" => {
            let Some(Some(x)) = inputs.first() else { bail!("FusedConv needs its input X") };
            let r = x.rank() as i64;
            if r < 3 {
                bail!("FusedConv X must have rank >= 3, got shape {:?}", x.shape());
            }
            // [N, spatial.., C] -> [N, C, spatial..] and back.
            let to_first: Vec<i64> = [0, r - 1].into_iter().chain(1..r - 1).collect();
            let to_last: Vec<i64> = [0].into_iter().chain(2..r).chain([1]).collect();
            let perm = |p: Vec<i64>| BTreeMap::from([("perm".to_string(), Attr::Ints(p))]);
            let xc = step(ctx, "Transpose", perm(to_first), &[Some(x)])?;
            let mut rest: Vec<Option<&Tensor>> = vec![Some(&xc)];
            rest.extend(inputs.iter().skip(1).copied());
            let y = activation(ctx, step(ctx, "Conv", attrs, &rest)?)?;
            Ok(vec![step(ctx, "Transpose", perm(to_last), &[Some(&y)])?])
        }
        other => bail!("attribute 'layout' must be \"NCHW\" or \"NHWC\", got \"{other}\""),
    }
}
