//! MaxUnpool: scatters X into zeros at the flat indices MaxPool returned.

use super::common::{axis_attr, floats, from_f64, numel};
use crate::util::{ints, opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

pub fn max_unpool(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, ind) = (req(inputs, 0)?, req(inputs, 1)?);
    let xs = x.shape();
    if xs.len() < 3 || ind.shape() != xs {
        bail!("MaxUnpool needs X of rank >= 3 and I of the same shape, got {xs:?} and {:?}", ind.shape());
    }
    let n = xs.len() - 2;
    let k = ctx.req_ints("kernel_shape")?;
    if k.len() != n || k.iter().any(|&v| v < 1) {
        bail!("attribute 'kernel_shape' must hold {n} positive values, got {k:?}");
    }
    let strides = axis_attr(ctx, "strides", n, 1)?;
    let pads: Vec<i64> = ctx.attr_ints("pads").map_or(vec![0; 2 * n], |p| p.to_vec());
    if pads.len() != 2 * n || pads.iter().any(|&p| p < 0) {
        bail!("attribute 'pads' must hold {} non-negative values, got {pads:?}", 2 * n);
    }
    // Indices address the default output (what MaxPool's input would have been); a given
    // output_shape extends it with zeros at the end of each axis.
    let mut inferred = xs[..2].to_vec();
    for i in 0..n {
        let v = (xs[i + 2] as i64 - 1) * strides[i] as i64 + k[i] - pads[i] - pads[i + n];
        inferred.push(usize::try_from(v).map_err(|_| OpError::Invalid(format!("MaxUnpool output size {v} is negative")))?);
    }
    let shape: Vec<usize> = match opt(inputs, 2) {
        Some(s) => {
            let s = ints(s)?;
            if s.len() != xs.len() || s.iter().zip(&inferred).any(|(&d, &i)| d < i as i64) {
                bail!("output_shape {s:?} must hold {} sizes, each at least {inferred:?}", xs.len());
            }
            s.iter().map(|&d| d as usize).collect()
        }
        None => inferred.clone(),
    };
    let total = numel(&shape)?;
    let inferred_total = numel(&inferred)?;
    let (ist, ost) = (crate::util::strides(&inferred), crate::util::strides(&shape));
    let xv = floats(x, "X")?;
    let iv = ind.to_i64_vec()?;
    let mut y = vec![0.0; total];
    for (&v, &i) in xv.iter().zip(&iv) {
        if i < 0 || i as usize >= inferred_total {
            bail!("MaxUnpool index {i} is out of range for shape {inferred:?}");
        }
        let o: usize = (0..shape.len()).map(|d| (i as usize / ist[d]) % inferred[d] * ost[d]).sum();
        y[o] = v;
    }
    Ok(vec![from_f64(x.dtype(), shape, &y)?])
}
