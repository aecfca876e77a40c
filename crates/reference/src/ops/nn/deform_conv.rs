//! DeformConv (2-D): like Conv, but each kernel tap samples X bilinearly at a learned offset,
//! optionally scaled by a mask; the sampled columns then go through the same GEMM.

use super::common::{Window, floats, from_f64, gemm_acc, numel};
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Bilinear sample of an `h x w` plane at (y, x), zero outside.
fn sample(plane: &[f64], h: usize, w: usize, y: f64, x: f64) -> f64 {
    if y <= -1.0 || y >= h as f64 || x <= -1.0 || x >= w as f64 {
        return 0.0;
    }
    let (y0, x0) = (y.floor(), x.floor());
    let (ly, lx) = (y - y0, x - x0);
    let at = |yy: f64, xx: f64| {
        if yy < 0.0 || xx < 0.0 || yy >= h as f64 || xx >= w as f64 { 0.0 } else { plane[yy as usize * w + xx as usize] }
    };
    (1.0 - ly) * (1.0 - lx) * at(y0, x0) + (1.0 - ly) * lx * at(y0, x0 + 1.0) + ly * (1.0 - lx) * at(y0 + 1.0, x0) + ly * lx * at(y0 + 1.0, x0 + 1.0)
}

pub fn deform_conv(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, w, off) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() != 4 || ws.len() != 4 {
        bail!("DeformConv supports 2-D input (N, C, H, W) and W (M, C/group, kH, kW), got {xs:?} and {ws:?}");
    }
    let group = ctx.attr_i("group", 1);
    let og = ctx.attr_i("offset_group", 1);
    let (n, c, h, wd, m) = (xs[0], xs[1], xs[2], xs[3], ws[0]);
    if group < 1 || og < 1 || c % group as usize != 0 || m % group as usize != 0 || ws[1] * group as usize != c || c % og as usize != 0 {
        bail!("DeformConv channels do not match: X {xs:?}, W {ws:?}, group {group}, offset_group {og}");
    }
    let (group, og) = (group as usize, og as usize);
    let win = Window::new(ctx, &xs[2..], &ws[2..], false)?;
    let (kh, kw) = (ws[2], ws[3]);
    let (ohs, ows) = (win.output[0], win.output[1]);
    let (kn, pn) = (kh * kw, ohs * ows);
    if off.shape() != [n, og * 2 * kn, ohs, ows] {
        bail!("offset must have shape [{n}, {}, {ohs}, {ows}], got {:?}", og * 2 * kn, off.shape());
    }
    let mask = match opt(inputs, 4) {
        Some(mt) if mt.shape() == [n, og * kn, ohs, ows] => Some(floats(mt, "mask")?),
        Some(mt) => bail!("mask must have shape [{n}, {}, {ohs}, {ows}], got {:?}", og * kn, mt.shape()),
        None => None,
    };
    let (xv, wv, ov) = (floats(x, "X")?, floats(w, "W")?, floats(off, "offset")?);
    let bias = match opt(inputs, 3) {
        Some(b) if b.len() == m => floats(b, "B")?,
        Some(b) => bail!("B must hold {m} values, got shape {:?}", b.shape()),
        None => vec![0.0; m],
    };
    let (cg, mg, cpo) = (c / group, m / group, c / og);
    let mut y = vec![0.0; numel(&[n, m, pn])?];
    for b in 0..n {
        for g in 0..group {
            let mut col = Vec::with_capacity(cg * kn * pn);
            for ci in 0..cg {
                let ch = g * cg + ci;
                let o = ch / cpo;
                let plane = &xv[(b * c + ch) * h * wd..(b * c + ch + 1) * h * wd];
                for k in 0..kn {
                    let (ki, kj) = (k / kw, k % kw);
                    let dy = &ov[((b * og + o) * 2 * kn + 2 * k) * pn..][..pn];
                    let dx = &ov[((b * og + o) * 2 * kn + 2 * k + 1) * pn..][..pn];
                    for p in 0..pn {
                        let (oi, oj) = (p / ows, p % ows);
                        let yy = (oi * win.strides[0] + ki * win.dilations[0]) as f64 - win.pad_begin[0] as f64 + dy[p];
                        let xx = (oj * win.strides[1] + kj * win.dilations[1]) as f64 - win.pad_begin[1] as f64 + dx[p];
                        let mk = mask.as_ref().map_or(1.0, |mv| mv[((b * og + o) * kn + k) * pn + p]);
                        col.push(sample(plane, h, wd, yy, xx) * mk);
                    }
                }
            }
            let wg = &wv[g * mg * cg * kn..(g + 1) * mg * cg * kn];
            let at = (b * m + g * mg) * pn;
            gemm_acc(mg, cg * kn, pn, wg, &col, &mut y[at..at + mg * pn]);
        }
    }
    for (i, v) in y.iter_mut().enumerate() {
        *v += bias[(i / pn.max(1)) % m];
    }
    Ok(vec![from_f64(x.dtype(), vec![n, m, ohs, ows], &y)?])
}
