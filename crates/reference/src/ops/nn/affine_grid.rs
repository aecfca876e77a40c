//! AffineGrid: sampling grids (N, H, W, 2) or (N, D, H, W, 3) from affine matrices theta.

use super::common::{floats, from_f64, numel, odometer};
use crate::util::{ints, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Normalised coordinates of the pixel centres (or corners) of an axis of `n` pixels.
fn base(n: usize, align: bool) -> Vec<f64> {
    (0..n)
        .map(|i| {
            if align {
                if n == 1 { -1.0 } else { -1.0 + 2.0 * i as f64 / (n - 1) as f64 }
            } else {
                (2.0 * i as f64 + 1.0) / n as f64 - 1.0
            }
        })
        .collect()
}

pub fn affine_grid(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let theta = req(inputs, 0)?;
    let size = ints(req(inputs, 1)?)?;
    let n = size.len().saturating_sub(2);
    if !(n == 2 || n == 3) || size.iter().any(|&s| s < 0) {
        bail!("AffineGrid size must be (N, C, H, W) or (N, C, D, H, W), got {size:?}");
    }
    let batch = size[0] as usize;
    if theta.shape() != [batch, n, n + 1] {
        bail!("theta must have shape [{batch}, {n}, {}], got {:?}", n + 1, theta.shape());
    }
    let align = ctx.attr_i("align_corners", 0) != 0;
    let spatial: Vec<usize> = size[2..].iter().map(|&s| s as usize).collect();
    let bases: Vec<Vec<f64>> = spatial.iter().map(|&s| base(s, align)).collect();
    let tv = floats(theta, "theta")?;
    let osz = numel(&spatial)?;
    let mut out = Vec::with_capacity(batch * osz * n);
    for b in 0..batch {
        let t = &tv[b * n * (n + 1)..(b + 1) * n * (n + 1)];
        let mut idx = vec![0usize; n];
        for _ in 0..osz {
            // Homogeneous point (x, y[, z], 1): x follows the innermost axis.
            let mut pt: Vec<f64> = (0..n).map(|k| bases[n - 1 - k][idx[n - 1 - k]]).collect();
            pt.push(1.0);
            for r in 0..n {
                out.push((0..=n).map(|k| t[r * (n + 1) + k] * pt[k]).sum());
            }
            odometer(&mut idx, &spatial);
        }
    }
    let mut shape = vec![batch];
    shape.extend(&spatial);
    shape.push(n);
    Ok(vec![from_f64(theta.dtype(), shape, &out)?])
}
