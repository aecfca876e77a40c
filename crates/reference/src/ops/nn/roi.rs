//! RoiAlign (bilinear samples averaged or maxed per bin) and MaxRoiPool (max per bin).

use super::common::{floats, from_f64, numel};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// X (N, C, H, W) and rois (R, cols): shape checks; returns (N, C, H, W, R).
fn dims(x: &Tensor, rois: &Tensor, cols: usize) -> Result<(usize, usize, usize, usize, usize), OpError> {
    let (xs, rs) = (x.shape(), rois.shape());
    if xs.len() != 4 || rs.len() != 2 || rs[1] != cols {
        bail!("expected X (N, C, H, W) and rois (R, {cols}), got {xs:?} and {rs:?}");
    }
    Ok((xs[0], xs[1], xs[2], xs[3], rs[0]))
}

fn pooled(ctx: &OpCtx, name_h: &str, name_w: &str) -> Result<(usize, usize), OpError> {
    let (h, w) = (ctx.attr_i(name_h, 1), ctx.attr_i(name_w, 1));
    if h < 1 || w < 1 {
        bail!("attributes '{name_h}' / '{name_w}' must be positive, got {h} / {w}");
    }
    Ok((h as usize, w as usize))
}

/// Bilinear taps (offset, weight) at (y, x) in an `h x w` plane; none outside [-1, size].
fn bilinear(y: f64, x: f64, h: usize, w: usize) -> Vec<(usize, f64)> {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
        return Vec::new();
    }
    let (mut y, mut x) = (y.max(0.0), x.max(0.0));
    let (mut y0, mut x0) = (y as usize, x as usize);
    let (y1, x1);
    if y0 >= h - 1 {
        y0 = h - 1;
        y1 = h - 1;
        y = y0 as f64;
    } else {
        y1 = y0 + 1;
    }
    if x0 >= w - 1 {
        x0 = w - 1;
        x1 = w - 1;
        x = x0 as f64;
    } else {
        x1 = x0 + 1;
    }
    let (ly, lx) = (y - y0 as f64, x - x0 as f64);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    vec![(y0 * w + x0, hy * hx), (y0 * w + x1, hy * lx), (y1 * w + x0, ly * hx), (y1 * w + x1, ly * lx)]
}

pub fn roi_align(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, rois, bidx) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    let (n, c, h, w, r) = dims(x, rois, 4)?;
    let (oh, ow) = pooled(ctx, "output_height", "output_width")?;
    let max_mode = match ctx.attr_s("mode", "avg") {
        "avg" => false,
        "max" => true,
        other => bail!("attribute 'mode' must be avg or max, got '{other}'"),
    };
    let ratio = ctx.attr_i("sampling_ratio", 0).max(0) as usize;
    let scale = ctx.attr_f("spatial_scale", 1.0);
    let default_ctm = if ctx.opset() >= 16 { "half_pixel" } else { "output_half_pixel" };
    let half_pixel = match ctx.attr_s("coordinate_transformation_mode", default_ctm) {
        "half_pixel" => true,
        "output_half_pixel" => false,
        other => bail!("attribute 'coordinate_transformation_mode' must be half_pixel or output_half_pixel, got '{other}'"),
    };
    let bi = bidx.to_i64_vec()?;
    if bi.len() != r || bi.iter().any(|&b| b < 0 || b as usize >= n) {
        bail!("batch_indices {bi:?} must hold {r} indices below {n}");
    }
    if h == 0 || w == 0 {
        bail!("RoiAlign needs a non-empty image, got {h}x{w}");
    }
    let xv = floats(x, "X")?;
    let rv = floats(rois, "rois")?;
    // The region geometry and sample positions are computed in f32, as onnxruntime does: the
    // adaptive grid is a ceil of the region size, so 4.0 (f32) and 4.000000000000001 (f64)
    // would give different sample counts.
    let off = if half_pixel { 0.5f32 } else { 0.0 };
    let mut y = vec![0.0; numel(&[r, c, oh, ow])?];
    for ri in 0..r {
        let b: Vec<f32> = rv[ri * 4..ri * 4 + 4].iter().map(|&v| v as f32).collect();
        let (sx, sy) = (b[0] * scale - off, b[1] * scale - off);
        let (mut rw, mut rh) = (b[2] * scale - off - sx, b[3] * scale - off - sy);
        if !half_pixel {
            rw = rw.max(1.0);
            rh = rh.max(1.0);
        }
        let (bh, bw) = (rh / oh as f32, rw / ow as f32);
        let gh = if ratio > 0 { ratio } else { bh.ceil().max(1.0) as usize };
        let gw = if ratio > 0 { ratio } else { bw.ceil().max(1.0) as usize };
        let count = (gh * gw) as f64;
        for ph in 0..oh {
            for pw in 0..ow {
                // The bin's sample points and their taps, shared by every channel.
                let mut samples = Vec::with_capacity(gh * gw);
                for iy in 0..gh {
                    let yy = sy + ph as f32 * bh + (iy as f32 + 0.5) * bh / gh as f32;
                    for ix in 0..gw {
                        let xx = sx + pw as f32 * bw + (ix as f32 + 0.5) * bw / gw as f32;
                        samples.push(bilinear(f64::from(yy), f64::from(xx), h, w));
                    }
                }
                for ch in 0..c {
                    let plane = &xv[(bi[ri] as usize * c + ch) * h * w..(bi[ri] as usize * c + ch + 1) * h * w];
                    let v = if max_mode {
                        // Each sample contributes its largest weighted tap (as ONNX Runtime does).
                        samples
                            .iter()
                            .map(|t| t.iter().map(|&(o, wt)| plane[o] * wt).fold(f64::NEG_INFINITY, f64::max))
                            .map(|m| if m == f64::NEG_INFINITY { 0.0 } else { m })
                            .fold(f64::NEG_INFINITY, f64::max)
                    } else {
                        samples.iter().map(|t| t.iter().map(|&(o, wt)| plane[o] * wt).sum::<f64>()).sum::<f64>() / count
                    };
                    y[((ri * c + ch) * oh + ph) * ow + pw] = v;
                }
            }
        }
    }
    Ok(vec![from_f64(x.dtype(), vec![r, c, oh, ow], &y)?])
}

pub fn max_roi_pool(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, rois) = (req(inputs, 0)?, req(inputs, 1)?);
    let (n, c, h, w, r) = dims(x, rois, 5)?;
    let ps = ctx.req_ints("pooled_shape")?;
    if ps.len() != 2 || ps.iter().any(|&v| v < 1) {
        bail!("attribute 'pooled_shape' must hold 2 positive values, got {ps:?}");
    }
    let (oh, ow) = (ps[0] as usize, ps[1] as usize);
    let scale = ctx.attr_f("spatial_scale", 1.0) as f64;
    let xv = floats(x, "X")?;
    let rv = floats(rois, "rois")?;
    let mut y = vec![0.0; numel(&[r, c, oh, ow])?];
    for ri in 0..r {
        let b = &rv[ri * 5..ri * 5 + 5];
        if b[0] < 0.0 || b[0] as usize >= n {
            bail!("roi {ri} names batch {} of {n}", b[0]);
        }
        let bi = b[0] as usize;
        let (x1, y1) = ((b[1] * scale).round() as i64, (b[2] * scale).round() as i64);
        let (x2, y2) = ((b[3] * scale).round() as i64, (b[4] * scale).round() as i64);
        let (rw, rh) = ((x2 - x1 + 1).max(1) as f64, (y2 - y1 + 1).max(1) as f64);
        let (bh, bw) = (rh / oh as f64, rw / ow as f64);
        for ph in 0..oh {
            let hs = ((ph as f64 * bh).floor() as i64 + y1).clamp(0, h as i64) as usize;
            let he = (((ph + 1) as f64 * bh).ceil() as i64 + y1).clamp(0, h as i64) as usize;
            for pw in 0..ow {
                let ws = ((pw as f64 * bw).floor() as i64 + x1).clamp(0, w as i64) as usize;
                let we = (((pw + 1) as f64 * bw).ceil() as i64 + x1).clamp(0, w as i64) as usize;
                for ch in 0..c {
                    let plane = &xv[(bi * c + ch) * h * w..(bi * c + ch + 1) * h * w];
                    let mut m = f64::NEG_INFINITY;
                    for yy in hs..he {
                        for xx in ws..we {
                            m = m.max(plane[yy * w + xx]);
                        }
                    }
                    y[((ri * c + ch) * oh + ph) * ow + pw] = if hs >= he || ws >= we { 0.0 } else { m };
                }
            }
        }
    }
    Ok(vec![from_f64(x.dtype(), vec![r, c, oh, ow], &y)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Value, registry};
    use kiln_ir::{Attr, Graph, Node};

    /// ROI x from 1 to 6 at spatial scale 0.8, half_pixel: 4.3 - 0.3 is exactly 4 in f32
    /// (onnxruntime's arithmetic), so the adaptive grid over a 4-wide output is 1 sample per
    /// bin, not 2: each output reads the image at one x.
    #[test]
    fn adaptive_grid_uses_f32_geometry() {
        let attrs = [("output_height", Attr::Int(1)), ("output_width", Attr::Int(4)), ("spatial_scale", Attr::Float(0.8))];
        let node = Node {
            op_type: "RoiAlign".into(),
            opset: 16,
            attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            ..Node::default()
        };
        let sub = |_: &Graph, _: Vec<Value>| -> Result<Vec<Value>, crate::ExecError> { Ok(vec![]) };
        let ctx = OpCtx { node: &node, subgraph: &sub };
        // One row of squares, so that one sample per bin and the mean of two differ.
        let x = Tensor::from_vec(vec![1, 1, 1, 8], (0..8).map(|v| (v * v) as f32).collect::<Vec<_>>()).unwrap();
        let rois = Tensor::from_vec(vec![1, 4], vec![1.0f32, 0.0, 6.0, 0.0]).unwrap();
        let bi = Tensor::from_vec(vec![1], vec![0i64]).unwrap();
        let Some(crate::Kernel::Tensor(f)) = registry().lookup("", "RoiAlign", 16) else { panic!("RoiAlign not registered") };
        let y = f(&ctx, &[Some(&x), Some(&rois), Some(&bi)]).unwrap();
        let got = y[0].to_f64_vec().unwrap();
        // Bins of width 1 from 0.3: one sample each at 0.8, 1.8, 2.8, 3.8, interpolated
        // between neighbouring squares (two samples would give 0.85 for the first).
        for (g, want) in got.iter().zip([0.8, 3.4, 8.0, 14.6]) {
            assert!((g - want).abs() < 1e-5, "{got:?}");
        }
    }
}
