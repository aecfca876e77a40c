//! HannWindow, HammingWindow and BlackmanWindow: generalized cosine windows of `size` points,
//! periodic (denominator N, the default) or symmetric (N - 1), of type `output_datatype`.

use super::common::{dtype_attr, from_f64, scalar_i64};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Tensor, checked_numel};
use std::f64::consts::PI;

pub fn hann(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    window(ctx, inputs, &[0.5, 0.5])
}

pub fn hamming(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    window(ctx, inputs, &[25.0 / 46.0, 21.0 / 46.0])
}

pub fn blackman(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    window(ctx, inputs, &[0.42, 0.5, 0.08])
}

/// w[n] = a0 - a1 cos(2πn/N) + a2 cos(4πn/N) - ...
fn window(ctx: &OpCtx, inputs: &[Option<&Tensor>], coeffs: &[f64]) -> Result<Vec<Tensor>, OpError> {
    let size = scalar_i64(req(inputs, 0)?, "size")?;
    if size < 0 {
        bail!("window size must be non-negative, got {size}");
    }
    let dtype = dtype_attr(ctx.attr_i("output_datatype", 1), "output_datatype")?;
    let n = checked_numel(&[size])?;
    let denom = if ctx.attr_i("periodic", 1) != 0 { n as f64 } else { n as f64 - 1.0 };
    let v: Vec<f64> = (0..n)
        .map(|i| {
            coeffs
                .iter()
                .enumerate()
                .map(|(k, &a)| {
                    let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
                    if k == 0 { a } else { sign * a * (2.0 * PI * k as f64 * i as f64 / denom).cos() }
                })
                .sum()
        })
        .collect();
    Ok(vec![from_f64(dtype, vec![n], &v)?])
}
