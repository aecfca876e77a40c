//! QLinearMatMul and QLinearConv: exact integer products of zero-point-shifted inputs,
//! rescaled by `a_scale * b_scale / y_scale` and requantised (round half to even, saturate).

use super::conv::{conv_core, conv_window, sub_w_zero_point};
use super::matmul::{batched_matmul, sub_zero_point};
use super::quantize::int_range;
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Data, Tensor};

fn quantized(t: &Tensor, what: &str) -> Result<Vec<i64>, OpError> {
    if !matches!(t.dtype(), DType::I8 | DType::U8) {
        bail!("{what} must be int8 or uint8, got {}", t.dtype());
    }
    Ok(t.to_i64_vec()?)
}

fn scales(t: &Tensor, what: &str) -> Result<Vec<f64>, OpError> {
    if !t.dtype().is_float() || t.is_empty() {
        bail!("{what} must be a non-empty float tensor, got {} {:?}", t.dtype(), t.shape());
    }
    Ok(t.to_f64_vec()?)
}

/// Requantises accumulators: `acc[i] * mult(i)`, rounded half to even, plus the output zero point.
fn requantize(acc: &[i64], mult: impl Fn(usize) -> f64, y_zp: &Tensor, shape: Vec<usize>) -> Result<Tensor, OpError> {
    if y_zp.len() != 1 {
        bail!("y_zero_point must be a scalar, got shape {:?}", y_zp.shape());
    }
    let dt = y_zp.dtype();
    let (lo, hi) = int_range(dt)?;
    let zp = y_zp.to_f64_vec()?[0];
    let y: Vec<f64> = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| (((a as f64 * mult(i)) as f32 as f64).round_ties_even() + zp).clamp(lo, hi))
        .collect();
    Ok(Tensor::new(shape, Data::from_f64_vec(dt, &y)?)?)
}

pub fn qlinear_matmul(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (a, a_s, a_zp) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    let (b, b_s, b_zp) = (req(inputs, 3)?, req(inputs, 4)?, req(inputs, 5)?);
    let (y_s, y_zp) = (req(inputs, 6)?, req(inputs, 7)?);
    let mut av = quantized(a, "a")?;
    let mut bv = quantized(b, "b")?;
    sub_zero_point(&mut av, a.shape(), Some(a_zp), true)?;
    sub_zero_point(&mut bv, b.shape(), Some(b_zp), false)?;
    let (acc, shape) = batched_matmul(&av, a.shape(), &bv, b.shape())?;
    let (asv, bsv, ys) = (scales(a_s, "a_scale")?, scales(b_s, "b_scale")?, scales(y_s, "y_scale")?);
    if ys.len() != 1 {
        bail!("y_scale must be a scalar, got shape {:?}", y_s.shape());
    }
    // A per-row a_scale follows axis -2 of the output, a per-column b_scale axis -1.
    let n = if b.rank() >= 2 { b.shape()[b.rank() - 1] } else { 1 };
    let m = if a.rank() >= 2 { a.shape()[a.rank() - 2] } else { 1 };
    if !(asv.len() == 1 || asv.len() == m) || !(bsv.len() == 1 || bsv.len() == n) {
        bail!("a_scale ({}) / b_scale ({}) must be scalars or per row / per column", asv.len(), bsv.len());
    }
    let mult = |i: usize| {
        let sa = if asv.len() == 1 { asv[0] } else { asv[(i / n) % m] };
        let sb = if bsv.len() == 1 { bsv[0] } else { bsv[i % n] };
        sa * sb / ys[0]
    };
    Ok(vec![requantize(&acc, mult, y_zp, shape)?])
}

pub fn qlinear_conv(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, x_s, x_zp) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    let (w, w_s, w_zp) = (req(inputs, 3)?, req(inputs, 4)?, req(inputs, 5)?);
    let (y_s, y_zp) = (req(inputs, 6)?, req(inputs, 7)?);
    let (win, group) = conv_window(ctx, x.shape(), w.shape())?;
    let mut xv = quantized(x, "x")?;
    if x_zp.len() != 1 {
        bail!("x_zero_point must be a scalar, got shape {:?}", x_zp.shape());
    }
    sub_zero_point(&mut xv, x.shape(), Some(x_zp), true)?;
    let mut wv = quantized(w, "w")?;
    sub_w_zero_point(&mut wv, w.shape(), Some(w_zp))?;
    let mut acc = conv_core(&xv, x.shape(), &wv, w.shape(), &win, group)?;
    let m = w.shape()[0];
    let pn = win.output_size().max(1);
    if let Some(bias) = opt(inputs, 8) {
        let bv = bias.to_i64_vec()?;
        if bv.len() != m {
            bail!("QLinearConv bias has {} values, expected {m}", bv.len());
        }
        for (i, v) in acc.iter_mut().enumerate() {
            *v += bv[(i / pn) % m];
        }
    }
    let (xs, wsv, ys) = (scales(x_s, "x_scale")?, scales(w_s, "w_scale")?, scales(y_s, "y_scale")?);
    if xs.len() != 1 || ys.len() != 1 || !(wsv.len() == 1 || wsv.len() == m) {
        bail!("QLinearConv scales: x_scale and y_scale must be scalars, w_scale scalar or per channel");
    }
    let mult = |i: usize| xs[0] * if wsv.len() == 1 { wsv[0] } else { wsv[(i / pn) % m] } / ys[0];
    let mut shape = vec![x.shape()[0], m];
    shape.extend(&win.output);
    Ok(vec![requantize(&acc, mult, y_zp, shape)?])
}
