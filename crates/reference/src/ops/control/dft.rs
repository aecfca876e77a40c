//! DFT: the discrete Fourier transform of every line along one axis of a real ([..., 1]) or
//! complex ([..., 2]) signal; the output is complex. `dft_length` pads with zeros or truncates,
//! `onesided` keeps the first floor(n/2)+1 bins, `inverse` uses e^{+i..} and scales by 1/n.
//! `inverse` with `onesided` is the inverse real transform (as onnxruntime and the later ONNX
//! specification have it): the input holds bins 0..=n/2 of a Hermitian spectrum, n defaults
//! to 2 (bins - 1), and the output is the real signal [..., n, ..., 1].
//! The axis is an attribute (default 1) before opset 20 and an input (default -2) from 20.
//! A plain O(n^2) transform per line, with one twiddle table per call.

use super::common::{from_f64, scalar_i64};
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Tensor, checked_numel};
use std::f64::consts::PI;

/// e^{-2πi k/n} for k in 0..n (conjugated when `inverse`).
pub fn twiddles(n: usize, inverse: bool) -> Vec<(f64, f64)> {
    let sign = if inverse { 1.0 } else { -1.0 };
    (0..n).map(|k| 2.0 * PI * k as f64 / n as f64).map(|a| (a.cos(), sign * a.sin())).collect()
}

/// Bins 0..out_len of the length-n transform of `x` (zero-padded or truncated to n).
pub fn dft_line(x: &[(f64, f64)], n: usize, out_len: usize, inverse: bool, tw: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let scale = if inverse && n > 0 { 1.0 / n as f64 } else { 1.0 };
    (0..out_len)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (j, &(xr, xi)) in x.iter().take(n).enumerate() {
                let (c, s) = tw[(j * k) % n];
                re += xr * c - xi * s;
                im += xr * s + xi * c;
            }
            (re * scale, im * scale)
        })
        .collect()
}

pub fn dft(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if !x.dtype().is_float() {
        bail!("DFT needs a float tensor, got {}", x.dtype());
    }
    let shape = x.shape();
    let r = shape.len();
    let comps = shape.last().copied().unwrap_or(0);
    if r < 2 || !(comps == 1 || comps == 2) {
        bail!("DFT input must be [..., 1] (real) or [..., 2] (complex) with rank >= 2, got {shape:?}");
    }
    let raw_axis = if ctx.opset() >= 20 {
        match opt(inputs, 2) {
            Some(t) => scalar_i64(t, "axis")?,
            None => -2,
        }
    } else {
        ctx.attr_i("axis", 1)
    };
    let ax = if raw_axis < 0 { raw_axis + r as i64 } else { raw_axis };
    if ax < 0 || ax >= r as i64 - 1 {
        bail!("DFT axis {raw_axis} is out of range for input rank {r} (the last axis holds the complex parts)");
    }
    let ax = ax as usize;
    let n_in = shape[ax];
    let n = match opt(inputs, 1) {
        Some(t) => {
            let l = scalar_i64(t, "dft_length")?;
            if l < 1 {
                bail!("'dft_length' must be positive, got {l}");
            }
            l as usize
        }
        None => n_in,
    };
    let inverse = ctx.attr_i("inverse", 0) != 0;
    let onesided = ctx.attr_i("onesided", 0) != 0;
    if inverse && onesided {
        let n = match opt(inputs, 1) {
            Some(_) => n,
            None => 2 * n_in.saturating_sub(1),
        };
        return inverse_real(x, ax, n);
    }
    let out_len = if onesided { n / 2 + 1 } else { n };
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..r - 1].iter().product();
    checked_numel(&[n as i64])?;
    checked_numel(&[outer as i64, out_len as i64, inner as i64, 2])?;
    let v = x.to_f64_vec()?;
    let tw = if n == 0 { Vec::new() } else { twiddles(n, inverse) };
    let mut out = vec![0.0; outer * out_len * inner * 2];
    let mut line = Vec::with_capacity(n_in);
    for o in 0..outer {
        for i in 0..inner {
            line.clear();
            for j in 0..n_in {
                let at = ((o * n_in + j) * inner + i) * comps;
                line.push((v[at], if comps == 2 { v[at + 1] } else { 0.0 }));
            }
            for (k, (re, im)) in dft_line(&line, n, out_len, inverse, &tw).into_iter().enumerate() {
                let at = ((o * out_len + k) * inner + i) * 2;
                out[at] = re;
                out[at + 1] = im;
            }
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[ax] = out_len;
    out_shape[r - 1] = 2;
    Ok(vec![from_f64(x.dtype(), out_shape, &out)?])
}

/// The inverse real transform along `ax`: bins 0..=n/2 of each line (truncated or padded with
/// zeros) extended to the full Hermitian spectrum F[n - k] = conj(F[k]), transformed back; the
/// real part, [..., n, ..., 1]. The imaginary parts of bin 0 (and of bin n/2 for even n) do
/// not contribute, as for any real signal.
fn inverse_real(x: &Tensor, ax: usize, n: usize) -> Result<Vec<Tensor>, OpError> {
    let shape = x.shape();
    let r = shape.len();
    let (n_in, comps) = (shape[ax], shape[r - 1]);
    if n == 0 {
        bail!("the inverse real DFT needs a length of at least 1 (dft_length, or 2 (bins - 1))");
    }
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..r - 1].iter().product();
    checked_numel(&[outer as i64, n as i64, inner as i64])?;
    let v = x.to_f64_vec()?;
    let tw = twiddles(n, true);
    let half = n / 2 + 1;
    let mut out = vec![0.0; outer * n * inner];
    let mut full = vec![(0.0, 0.0); n];
    for o in 0..outer {
        for i in 0..inner {
            let bin = |k: usize| -> (f64, f64) {
                if k >= n_in {
                    return (0.0, 0.0);
                }
                let at = ((o * n_in + k) * inner + i) * comps;
                (v[at], if comps == 2 { v[at + 1] } else { 0.0 })
            };
            for (k, f) in full.iter_mut().enumerate() {
                *f = if k < half {
                    bin(k)
                } else {
                    let (re, im) = bin(n - k);
                    (re, -im)
                };
            }
            for (t, (re, _)) in dft_line(&full, n, n, true, &tw).into_iter().enumerate() {
                out[(o * n + t) * inner + i] = re;
            }
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[ax] = n;
    out_shape[r - 1] = 1;
    Ok(vec![from_f64(x.dtype(), out_shape, &out)?])
}
