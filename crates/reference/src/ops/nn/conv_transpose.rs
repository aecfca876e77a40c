//! ConvTranspose: GEMM of W' and X into columns, scattered back (col2im) into the full
//! output, which is then cropped by the pads (or extended, for output_padding / output_shape).

use super::common::{Window, axis_attr, col2im, floats, from_f64, gemm_acc, numel, odometer, transpose};
use crate::util::{opt, req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Per-axis (pad_begin, pad_end) of the full output, possibly negative (the output grows).
fn pads(ctx: &OpCtx, input: &[usize], full: &[usize], out_pad: &[usize], stride: &[usize]) -> Result<Vec<(i64, i64)>, OpError> {
    let n = input.len();
    let auto_pad = ctx.attr_s("auto_pad", "NOTSET");
    let target: Option<Vec<i64>> = match ctx.attr_ints("output_shape") {
        Some(s) if s.len() == n => Some(s.to_vec()),
        Some(s) if s.len() == n + 2 => Some(s[2..].to_vec()),
        Some(s) => bail!("attribute 'output_shape' must hold {n} values, got {s:?}"),
        None if auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER" => {
            Some((0..n).map(|i| (input[i] * stride[i]) as i64).collect())
        }
        None => None,
    };
    if let Some(t) = target {
        let upper = auto_pad == "SAME_UPPER";
        return Ok((0..n)
            .map(|i| {
                let total = (full[i] + out_pad[i]) as i64 - t[i];
                let half = total.div_euclid(2);
                if upper { (half, total - half) } else { (total - half, half) }
            })
            .collect());
    }
    match auto_pad {
        "NOTSET" | "VALID" => {}
        other => bail!("attribute 'auto_pad' must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '{other}'"),
    }
    match ctx.attr_ints("pads") {
        Some(p) if auto_pad == "NOTSET" => {
            if p.len() != 2 * n || p.iter().any(|&v| v < 0) {
                bail!("attribute 'pads' must hold {} non-negative values, got {p:?}", 2 * n);
            }
            Ok((0..n).map(|i| (p[i], p[i + n])).collect())
        }
        _ => Ok(vec![(0, 0); n]),
    }
}

pub fn conv_transpose(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, w) = (req(inputs, 0)?, req(inputs, 1)?);
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() < 3 || ws.len() != xs.len() {
        bail!("ConvTranspose needs X of rank >= 3 and W of the same rank, got {xs:?} and {ws:?}");
    }
    let n = xs.len() - 2;
    let group = ctx.attr_i("group", 1);
    if group < 1 || xs[1] % group as usize != 0 || ws[0] != xs[1] {
        bail!("ConvTranspose channels do not match: X {xs:?}, W {ws:?}, group {group}");
    }
    let group = group as usize;
    let (batch, c, mg) = (xs[0], xs[1], ws[1]);
    let (cg, m) = (c / group, mg * group);
    let kernel = ws[2..].to_vec();
    let input = xs[2..].to_vec();
    let stride = axis_attr(ctx, "strides", n, 1)?;
    let dilations = axis_attr(ctx, "dilations", n, 1)?;
    let out_pad: Vec<usize> = match ctx.attr_ints("output_padding") {
        Some(p) if p.len() == n && p.iter().all(|&v| v >= 0) => p.iter().map(|&v| v as usize).collect(),
        Some(p) => bail!("attribute 'output_padding' must hold {n} non-negative values, got {p:?}"),
        None => vec![0; n],
    };
    if input.contains(&0) || kernel.contains(&0) {
        bail!("ConvTranspose needs non-empty input and kernel, got {xs:?} and {ws:?}");
    }
    // The full (uncropped) output: every position some input pixel's kernel touches.
    let full: Vec<usize> = (0..n).map(|i| stride[i] * (input[i] - 1) + (kernel[i] - 1) * dilations[i] + 1).collect();
    let pads = pads(ctx, &input, &full, &out_pad, &stride)?;
    let out: Vec<usize> = (0..n)
        .map(|i| (full[i] + out_pad[i]) as i64 - pads[i].0 - pads[i].1)
        .map(|v| usize::try_from(v).map_err(|_| OpError::Invalid(format!("ConvTranspose output size {v} is negative"))))
        .collect::<Result<_, _>>()?;
    let win = Window {
        input: full.clone(),
        kernel: kernel.clone(),
        strides: stride,
        dilations,
        pad_begin: vec![0; n],
        pad_end: vec![0; n],
        output: input.clone(),
    };
    let offsets = win.offsets();
    let (kn, pin, fsz) = (win.kernel_size(), win.output_size(), win.input_size());
    let xv = floats(x, "X")?;
    let wv = floats(w, "W")?;
    let mut fullimg = vec![0.0; numel(&[batch, m, fsz])?];
    for b in 0..batch {
        for g in 0..group {
            let xg = &xv[(b * c + g * cg) * pin..(b * c + (g + 1) * cg) * pin];
            let wt = transpose(cg, mg * kn, &wv[g * cg * mg * kn..(g + 1) * cg * mg * kn]);
            let mut col = vec![0.0; mg * kn * pin];
            gemm_acc(mg * kn, cg, pin, &wt, xg, &mut col);
            let o = (b * m + g * mg) * fsz;
            col2im(&col, mg, &win, &offsets, &mut fullimg[o..o + mg * fsz]);
        }
    }
    let bias = match opt(inputs, 2) {
        Some(bt) => {
            let bv = floats(bt, "B")?;
            if bv.len() != m {
                bail!("ConvTranspose bias has {} values, expected {m}", bv.len());
            }
            bv
        }
        None => vec![0.0; m],
    };
    // Crop (or zero-extend) the full output by the pads, adding the bias.
    let osz = numel(&out)?;
    let fst = strides(&full);
    let mut y = Vec::with_capacity(numel(&[batch, m, osz])?);
    for plane in 0..batch * m {
        let src = &fullimg[plane * fsz..(plane + 1) * fsz];
        let mut idx = vec![0usize; n];
        for _ in 0..osz {
            let mut off = Some(0usize);
            for d in 0..n {
                let j = idx[d] as i64 + pads[d].0;
                off = match off {
                    Some(o) if j >= 0 && (j as usize) < full[d] => Some(o + j as usize * fst[d]),
                    _ => None,
                };
            }
            y.push(off.map_or(0.0, |o| src[o]) + bias[plane % m]);
            odometer(&mut idx, &out);
        }
    }
    let mut shape = vec![batch, m];
    shape.extend(&out);
    Ok(vec![from_f64(x.dtype(), shape, &y)?])
}
