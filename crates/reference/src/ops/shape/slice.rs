//! Slice.

use super::common::{axes_list, gather_flat, index_map};
use crate::util::{ints, opt, req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Slice: `starts`/`ends`/`axes` attributes before opset 10; inputs (with `steps`) after.
/// Starts and ends count from the end when negative and are clamped to the axis.
pub fn slice(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let (starts, ends, axes, steps) = if ctx.opset() < 10 {
        let axes = ctx.attr_ints("axes").map(<[i64]>::to_vec);
        (ctx.req_ints("starts")?.to_vec(), ctx.req_ints("ends")?.to_vec(), axes, None)
    } else {
        let get = |i| opt(inputs, i).map(ints).transpose();
        (ints(req(inputs, 1)?)?, ints(req(inputs, 2)?)?, get(3)?, get(4)?)
    };
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        bail!("starts, ends, axes and steps must have the same length, got {n}, {}, {}, {}", ends.len(), axes.len(), steps.len());
    }
    let axes = axes_list(&axes, x.rank())?;
    let mut begin = vec![0i64; x.rank()];
    let mut step = vec![1i64; x.rank()];
    let mut shape = x.shape().to_vec();
    for k in 0..n {
        let (ax, s) = (axes[k], steps[k]);
        let d = x.shape()[ax] as i64;
        if s == 0 {
            bail!("slice step for axis {ax} must not be 0");
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (b, e) = if d == 0 {
            (0, 0)
        } else if s > 0 {
            (norm(starts[k]).clamp(0, d), norm(ends[k]).clamp(0, d))
        } else {
            (norm(starts[k]).clamp(0, d - 1), norm(ends[k]).clamp(-1, d - 1))
        };
        let (span, s_abs) = if s > 0 { ((e - b).max(0), s) } else { ((b - e).max(0), s.saturating_neg()) };
        let len = span / s_abs + i64::from(span % s_abs != 0);
        begin[ax] = b;
        step[ax] = s;
        shape[ax] = len as usize;
    }
    let st = strides(x.shape());
    let idx = index_map(&shape, |o| o.iter().enumerate().map(|(a, &i)| (begin[a] + i as i64 * step[a]) as usize * st[a]).sum());
    Ok(vec![gather_flat(x, shape, &idx)?])
}
