//! NonMaxSuppression: greedy per batch and class, by descending score.

use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// A box as (y1, x1, y2, x2) with y1 <= y2, x1 <= x2.
fn corners(b: &[f64], center: bool) -> [f64; 4] {
    if center {
        let (xc, yc, w, h) = (b[0], b[1], b[2], b[3]);
        [yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0]
    } else {
        [b[0].min(b[2]), b[1].min(b[3]), b[0].max(b[2]), b[1].max(b[3])]
    }
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let ih = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iw = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ih * iw;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

fn scalar(t: Option<&Tensor>) -> Result<Option<f64>, OpError> {
    match t {
        None => Ok(None),
        Some(t) if t.len() == 1 => Ok(Some(t.to_f64_vec()?[0])),
        Some(t) => bail!("expected a scalar, got shape {:?}", t.shape()),
    }
}

pub fn non_max_suppression(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (boxes, scores) = (req(inputs, 0)?, req(inputs, 1)?);
    let (bs, ss) = (boxes.shape(), scores.shape());
    if bs.len() != 3 || bs[2] != 4 || ss.len() != 3 || ss[0] != bs[0] || ss[2] != bs[1] {
        bail!("NonMaxSuppression needs boxes (N, B, 4) and scores (N, C, B), got {bs:?} and {ss:?}");
    }
    let max_out = scalar(opt(inputs, 2))?.unwrap_or(0.0).max(0.0) as usize;
    let iou_th = scalar(opt(inputs, 3))?.unwrap_or(0.0);
    let score_th = scalar(opt(inputs, 4))?;
    let center = ctx.attr_i("center_point_box", 0) != 0;
    let (n, classes, nb) = (ss[0], ss[1], ss[2]);
    let bv = boxes.to_f64_vec()?;
    let sv = scores.to_f64_vec()?;
    let mut sel: Vec<i64> = Vec::new();
    for b in 0..n {
        let bx: Vec<[f64; 4]> = (0..nb).map(|i| corners(&bv[(b * nb + i) * 4..(b * nb + i + 1) * 4], center)).collect();
        for c in 0..classes {
            let s = &sv[(b * classes + c) * nb..(b * classes + c + 1) * nb];
            let mut cand: Vec<usize> = (0..nb).filter(|&i| score_th.is_none_or(|t| s[i] > t)).collect();
            // Stable: equal scores keep box order.
            cand.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
            let mut kept: Vec<usize> = Vec::new();
            for i in cand {
                if kept.len() >= max_out {
                    break;
                }
                if kept.iter().all(|&k| iou(&bx[k], &bx[i]) <= iou_th) {
                    kept.push(i);
                }
            }
            for k in kept {
                sel.extend([b as i64, c as i64, k as i64]);
            }
        }
    }
    let rows = sel.len() / 3;
    Ok(vec![Tensor::from_vec(vec![rows, 3], sel)?])
}
