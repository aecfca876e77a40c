//! Conv (1-D/2-D/3-D, groups, auto_pad) as im2col + GEMM, and ConvInteger on the same core.

use super::common::{Acc, Window, floats, from_f64, gemm_acc, im2col, numel};
use super::matmul::sub_zero_point;
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Tensor};

/// Checks X (N, C, spatial...) against W (M, C/group, kernel...) and builds the window.
pub fn conv_window(ctx: &OpCtx, xs: &[usize], ws: &[usize]) -> Result<(Window, usize), OpError> {
    if xs.len() < 3 || ws.len() != xs.len() {
        bail!("Conv needs X of rank >= 3 and W of the same rank, got {xs:?} and {ws:?}");
    }
    let group = ctx.attr_i("group", 1);
    if group < 1 {
        bail!("attribute 'group' must be positive, got {group}");
    }
    let group = group as usize;
    let (c, m) = (xs[1], ws[0]);
    if c % group != 0 || m % group != 0 || ws[1] * group != c {
        bail!("Conv channels do not match: X has {c}, W is {ws:?}, group {group}");
    }
    let kernel = &ws[2..];
    if let Some(k) = ctx.attr_ints("kernel_shape")
        && k.iter().map(|&v| v as usize).ne(kernel.iter().copied())
    {
        bail!("attribute 'kernel_shape' {k:?} does not match W's shape {ws:?}");
    }
    Ok((Window::new(ctx, &xs[2..], kernel, false)?, group))
}

/// Convolution of `x` (N, C, in...) with `w` (M, C/group, k...): returns (N, M, out...) data.
pub fn conv_core<T: Acc>(x: &[T], xs: &[usize], w: &[T], ws: &[usize], win: &Window, group: usize) -> Result<Vec<T>, OpError> {
    let (n, c, m) = (xs[0], xs[1], ws[0]);
    let (cg, mg) = (c / group, m / group);
    let (kn, pn, isz) = (win.kernel_size(), win.output_size(), win.input_size());
    let offsets = win.offsets();
    let mut out = vec![T::default(); numel(&[n, m, pn])?];
    for b in 0..n {
        for g in 0..group {
            let img = &x[(b * c + g * cg) * isz..(b * c + (g + 1) * cg) * isz];
            let col = im2col(img, cg, win, &offsets, T::default());
            let wg = &w[g * mg * cg * kn..(g + 1) * mg * cg * kn];
            let o = (b * m + g * mg) * pn;
            gemm_acc(mg, cg * kn, pn, wg, &col, &mut out[o..o + mg * pn]);
        }
    }
    Ok(out)
}

pub fn conv(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, w) = (req(inputs, 0)?, req(inputs, 1)?);
    let (win, group) = conv_window(ctx, x.shape(), w.shape())?;
    let mut out = conv_core(&floats(x, "X")?, x.shape(), &floats(w, "W")?, w.shape(), &win, group)?;
    let m = w.shape()[0];
    if let Some(b) = opt(inputs, 2) {
        let bv = floats(b, "B")?;
        if bv.len() != m {
            bail!("Conv bias has {} values, expected {m}", bv.len());
        }
        let pn = win.output_size();
        for (i, v) in out.iter_mut().enumerate() {
            *v += bv[(i / pn.max(1)) % m];
        }
    }
    let mut shape = vec![x.shape()[0], m];
    shape.extend(&win.output);
    Ok(vec![from_f64(x.dtype(), shape, &out)?])
}

pub fn conv_integer(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, w) = (req(inputs, 0)?, req(inputs, 1)?);
    for t in [x, w] {
        if !matches!(t.dtype(), DType::I8 | DType::U8) {
            bail!("ConvInteger takes int8/uint8 inputs, got {}", t.dtype());
        }
    }
    let (win, group) = conv_window(ctx, x.shape(), w.shape())?;
    let mut xv = x.to_i64_vec()?;
    if let Some(zp) = opt(inputs, 2) {
        if zp.len() != 1 {
            bail!("ConvInteger x_zero_point must be a scalar, got shape {:?}", zp.shape());
        }
        sub_zero_point(&mut xv, x.shape(), Some(zp), true)?;
    }
    let mut wv = w.to_i64_vec()?;
    sub_w_zero_point(&mut wv, w.shape(), opt(inputs, 3))?;
    let out = conv_core(&xv, x.shape(), &wv, w.shape(), &win, group)?;
    let mut shape = vec![x.shape()[0], w.shape()[0]];
    shape.extend(&win.output);
    Ok(vec![Tensor::from_vec(shape, out)?.cast(DType::I32)?])
}

/// Subtracts a weight zero point: a scalar, or one per output channel (axis 0 of W).
pub fn sub_w_zero_point(wv: &mut [i64], ws: &[usize], zp: Option<&Tensor>) -> Result<(), OpError> {
    let Some(zp) = zp else { return Ok(()) };
    let z = zp.to_i64_vec()?;
    let m = ws[0];
    let per = wv.len() / m.max(1);
    if z.len() == 1 {
        wv.iter_mut().for_each(|v| *v -= z[0]);
    } else if z.len() == m {
        for (i, v) in wv.iter_mut().enumerate() {
            *v -= z[i / per.max(1)];
        }
    } else {
        bail!("weight zero point has {} values, expected 1 or {m}", z.len());
    }
    Ok(())
}
