//! STFT: the short-time Fourier transform of a [batch, length, 1 or 2] signal: frames of
//! `frame_length` samples every `frame_step`, each multiplied by `window` (default all ones)
//! and transformed; output [batch, frames, bins, 2], bins = floor(n/2)+1 when `onesided`.

use super::common::{from_f64, scalar_i64};
use super::dft::{dft_line, twiddles};
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

pub fn stft(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if !x.dtype().is_float() {
        bail!("STFT needs a float signal, got {}", x.dtype());
    }
    let (batch, len, comps) = match *x.shape() {
        [b, l, c] if c == 1 || c == 2 => (b, l, c),
        ref s => bail!("STFT signal must be [batch, length, 1 or 2], got {s:?}"),
    };
    let step = scalar_i64(req(inputs, 1)?, "frame_step")?;
    if step < 1 {
        bail!("'frame_step' must be positive, got {step}");
    }
    let window = opt(inputs, 2).map(|w| w.to_f64_vec()).transpose()?;
    let frame_len = match (opt(inputs, 3), &window) {
        (Some(t), w) => {
            let l = scalar_i64(t, "frame_length")?;
            if l < 1 || w.as_ref().is_some_and(|w| w.len() as i64 != l) {
                bail!("'frame_length' {l} must be positive and equal the window's length");
            }
            l as usize
        }
        (None, Some(w)) if !w.is_empty() => w.len(),
        _ => bail!("STFT needs 'frame_length' or 'window'"),
    };
    if frame_len > len {
        bail!("frame length {frame_len} is longer than the signal ({len})");
    }
    let window = window.unwrap_or_else(|| vec![1.0; frame_len]);
    let frames = (len - frame_len) / step as usize + 1;
    let bins = if ctx.attr_i("onesided", 1) != 0 { frame_len / 2 + 1 } else { frame_len };
    let v = x.to_f64_vec()?;
    let tw = twiddles(frame_len, false);
    let mut out = Vec::with_capacity(batch * frames * bins * 2);
    let mut frame = Vec::with_capacity(frame_len);
    for b in 0..batch {
        for f in 0..frames {
            frame.clear();
            for (j, &w) in window.iter().enumerate() {
                let at = (b * len + f * step as usize + j) * comps;
                frame.push((v[at] * w, if comps == 2 { v[at + 1] * w } else { 0.0 }));
            }
            for (re, im) in dft_line(&frame, frame_len, bins, false, &tw) {
                out.push(re);
                out.push(im);
            }
        }
    }
    Ok(vec![from_f64(x.dtype(), vec![batch, frames, bins, 2], &out)?])
}
