//! OneHot.

use super::common::take;
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// OneHot: a new axis of size `depth` at `axis`, holding `values[1]` where it equals the
/// index (negative indices count back from `depth`) and `values[0]` elsewhere.
pub fn one_hot(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (ind, depth, values) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    if values.len() != 2 {
        bail!("values must hold [off, on], got {} elements", values.len());
    }
    let depth = match depth.to_f64_vec()?.as_slice() {
        [d] if *d >= 1.0 && *d <= kiln_tensor::MAX_ELEMENTS as f64 => *d as usize,
        v => bail!("depth must be one positive number, got {v:?}"),
    };
    let r = ind.rank() as i64;
    let a = ctx.attr_i("axis", -1);
    let ax = if a < 0 { a + r + 1 } else { a };
    if !(0..=r).contains(&ax) {
        bail!("attribute 'axis' must be in [{}, {r}], got {a}", -r - 1);
    }
    let ax = ax as usize;
    let iv: Vec<Option<usize>> = ind
        .to_f64_vec()?
        .iter()
        .map(|&v| {
            let i = v.trunc() as i64;
            let i = if i < 0 { i + depth as i64 } else { i };
            usize::try_from(i).ok().filter(|&i| i < depth)
        })
        .collect();
    let outer: usize = ind.shape()[..ax].iter().product();
    let inner: usize = ind.shape()[ax..].iter().product();
    let mut pick = Vec::with_capacity(outer * depth * inner);
    for o in 0..outer {
        for d in 0..depth {
            pick.extend((0..inner).map(|i| usize::from(iv[o * inner + i] == Some(d))));
        }
    }
    let shape = [&ind.shape()[..ax], &[depth], &ind.shape()[ax..]].concat();
    kiln_tensor::checked_numel(&shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    Ok(vec![Tensor::new(shape, take(values.data(), &pick)?)?])
}
