//! The per-channel arithmetic: smoothing factors and scaled copies of constants.

use super::plan::Axis;
use kiln_tensor::{Tensor, TensorError};

/// The smallest and largest factor: keeps `x / s` and `w * s` finite and away from 0.
pub const FACTOR_LIMIT: f32 = 1e5;

/// `s_j = x_j^alpha / w_j^(1 - alpha)`, clamped to `[1/FACTOR_LIMIT, FACTOR_LIMIT]`; 1 where
/// either maximum is 0 or not finite (a dead channel stays as it is).
pub fn factors(x_max: &[f32], w_max: &[f32], alpha: f32) -> Vec<f32> {
    x_max
        .iter()
        .zip(w_max)
        .map(|(&x, &w)| {
            if !(x > 0.0 && w > 0.0 && x.is_finite() && w.is_finite()) {
                return 1.0;
            }
            let s = (f64::from(x).powf(f64::from(alpha)) / f64::from(w).powf(f64::from(1.0 - alpha))) as f32;
            if s.is_finite() { s.clamp(1.0 / FACTOR_LIMIT, FACTOR_LIMIT) } else { 1.0 }
        })
        .collect()
}

/// `max_i |w[j, i]|` along the channel axis `axis` of a 2-D f32 weight, folded into `acc`.
pub fn row_max(w: &Tensor, axis: usize, acc: &mut [f32]) -> Result<(), TensorError> {
    let data = w.as_slice::<f32>()?;
    let cols = w.shape()[1];
    for (i, &v) in data.iter().enumerate() {
        let j = if axis == 0 { i / cols } else { i % cols };
        if let Some(a) = acc.get_mut(j)
            && v.is_finite()
        {
            *a = a.max(v.abs());
        }
    }
    Ok(())
}

/// A copy of `t` with its channels along `axis` multiplied (or divided) by `s`.
pub fn scaled(t: &Tensor, axis: Axis, s: &[f32], divide: bool) -> Result<Tensor, TensorError> {
    let k = s.len();
    let f = |v: f32, j: usize| if divide { v / s[j] } else { v * s[j] };
    let data = t.as_slice::<f32>()?;
    match axis {
        Axis::Of2d(axis) => {
            let cols = t.shape()[1];
            let out = data.iter().enumerate().map(|(i, &v)| f(v, if axis == 0 { i / cols } else { i % cols })).collect();
            Tensor::from_vec(t.shape().to_vec(), out)
        }
        Axis::Last => {
            let mut shape = t.shape().to_vec();
            match shape.last_mut() {
                Some(d) if *d == k => {
                    let out = data.iter().enumerate().map(|(i, &v)| f(v, i % k)).collect();
                    return Tensor::from_vec(shape, out);
                }
                Some(d) => *d = k,
                None => shape.push(k),
            }
            // A scalar or a last dim of 1: expanded to K channels.
            let out = data.iter().flat_map(|&v| (0..k).map(move |j| f(v, j))).collect();
            Tensor::from_vec(shape, out)
        }
    }
}
