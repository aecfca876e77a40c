//! Per-channel symmetric int8 weights: `scale_c = max|w_c| / 127`, zero point 0,
//! `q = clamp(round_half_even(w / scale_c), -127, 127)`.

use kiln_tensor::{Tensor, TensorError};

/// A weight quantized along `axis`.
#[derive(Clone, Debug)]
pub(crate) struct QuantizedWeight {
    pub q: Tensor,
    pub scale: Tensor,
    pub zero_point: Tensor,
}

/// Quantizes `w * alpha` per slice of `axis` (a channel whose weights are all 0 gets scale 1).
pub(crate) fn quantize_per_channel(w: &Tensor, axis: usize, alpha: f32) -> Result<QuantizedWeight, TensorError> {
    let shape = w.shape().to_vec();
    let data = w.as_slice::<f32>()?;
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let channel = |i: usize| (i / inner.max(1)) % channels;
    let mut peak = vec![0.0f32; channels];
    for (i, &x) in data.iter().enumerate() {
        let v = (x * alpha).abs();
        if v.is_finite() {
            let c = &mut peak[channel(i)];
            *c = c.max(v);
        }
    }
    let scales: Vec<f32> = peak.iter().map(|&m| crate::params::safe_scale(m / 127.0)).collect();
    let q: Vec<i8> = data
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let v = x * alpha / scales[channel(i)];
            if v.is_nan() { 0 } else { v.round_ties_even().clamp(-127.0, 127.0) as i8 }
        })
        .collect();
    Ok(QuantizedWeight {
        q: Tensor::from_vec(shape, q)?,
        scale: Tensor::from_vec(vec![channels], scales)?,
        zero_point: Tensor::from_vec(vec![channels], vec![0i8; channels])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_scales_follow_the_axis() {
        // [K=2, N=3], axis 1: channel n is column n.
        let w = Tensor::from_vec(vec![2, 3], vec![1.0f32, -1.0, 0.0, 0.25, 4.0, 0.0]).unwrap();
        let qw = quantize_per_channel(&w, 1, 1.0).unwrap();
        assert_eq!(qw.scale.as_slice::<f32>().unwrap(), &[1.0 / 127.0, 4.0 / 127.0, 1.0]);
        assert_eq!(qw.q.as_slice::<i8>().unwrap(), &[127, -32, 0, 32, 127, 0]);
        assert_eq!(qw.zero_point.as_slice::<i8>().unwrap(), &[0, 0, 0]);
        // axis 0 with alpha 2: row k is channel k.
        let qw = quantize_per_channel(&w, 0, 2.0).unwrap();
        assert_eq!(qw.scale.as_slice::<f32>().unwrap(), &[2.0 / 127.0, 8.0 / 127.0]);
        assert_eq!(qw.q.as_slice::<i8>().unwrap(), &[127, -127, 0, 8, 127, 0]);
    }
}
