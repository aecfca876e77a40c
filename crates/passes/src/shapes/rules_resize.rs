//! Inference for ops that grow or shrink spatial dims: Resize, Upsample, ConvTranspose, Pad.
//! A dim that depends on something not constant becomes a fresh symbol, but the element type
//! and rank still flow, so later nodes can be lowered by type.

use super::{Cx, Fact};
use kiln_tensor::Dim;

pub fn infer(cx: &Cx, op: &str) -> Result<Option<Vec<Fact>>, String> {
    let dt = cx.dtype(0);
    let shape = match op {
        "Resize" | "Upsample" => resize(cx),
        "ConvTranspose" => conv_transpose(cx)?,
        "Pad" => pad(cx),
        _ => return Ok(None),
    };
    Ok(Some(vec![Fact::new(dt, shape)]))
}

/// Output dims from constant `sizes`, else constant `scales` (floor(d * s), as the spec says).
fn resize(cx: &Cx) -> Option<Vec<Dim>> {
    let x = cx.shape(0)?;
    let fresh_all = || Some(x.iter().map(|_| cx.fresh()).collect());
    if cx.n.attr_ints("axes").is_some() || cx.n.attr_str("keep_aspect_ratio_policy").is_some_and(|p| p != "stretch") {
        return fresh_all();
    }
    // Upsample and Resize-10: (X, scales); Resize-11+: (X, roi, scales, sizes).
    let (scales_at, sizes_at) = if cx.n.op_type == "Upsample" || cx.n.opset < 11 { (1, None) } else { (2, Some(3)) };
    if let Some(i) = sizes_at.filter(|&i| cx.has_input(i)) {
        return match cx.ints(i) {
            Some(s) if s.len() == x.len() => Some(s.iter().map(|&n| usize::try_from(n).map_or_else(|_| cx.fresh(), Dim::Known)).collect()),
            _ => fresh_all(),
        };
    }
    let scales = cx.constant(scales_at).and_then(|t| t.to_f64_vec().ok()).or_else(|| {
        // Upsample-7 keeps its scales in an attribute.
        cx.n.attr_floats("scales").map(|v| v.iter().map(|&f| f64::from(f)).collect())
    });
    match scales {
        Some(s) if s.len() == x.len() => Some(
            x.iter()
                .zip(&s)
                .map(|(d, &f)| match d {
                    _ if f == 1.0 => d.clone(),
                    Dim::Known(n) if f > 0.0 && f.is_finite() => Dim::Known((*n as f64 * f).floor() as usize),
                    _ => cx.fresh(),
                })
                .collect(),
        ),
        _ => fresh_all(),
    }
}

/// (N, C_out, spatial...) with each spatial dim
/// `stride (in - 1) + output_padding + (k - 1) dilation + 1 - pad_begin - pad_end`.
fn conv_transpose(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let (Some(x), Some(w)) = (cx.shape(0), cx.shape(1)) else { return Ok(None) };
    if x.len() < 3 || w.len() != x.len() {
        return Err(format!("ConvTranspose needs X of rank >= 3 and W of the same rank, got {} and {}", super::shape_text(x), super::shape_text(w)));
    }
    let k = x.len() - 2;
    let group = cx.attr_i("group", 1);
    let c_out = match (&w[1], usize::try_from(group)) {
        (Dim::Known(m), Ok(g)) if g >= 1 => Dim::Known(m * g),
        _ => cx.fresh(),
    };
    let mut out = vec![x[0].clone(), c_out];
    if let Some(os) = cx.n.attr_ints("output_shape") {
        let spatial = if os.len() == k { os } else { os.get(2..).unwrap_or(&[]) };
        if spatial.len() == k {
            out.extend(spatial.iter().map(|&n| usize::try_from(n).map_or_else(|_| cx.fresh(), Dim::Known)));
            return Ok(Some(out));
        }
    }
    let list = |name: &str, default: i64, len: usize| -> Option<Vec<i64>> {
        match cx.n.attr_ints(name) {
            None => Some(vec![default; len]),
            Some(v) if v.len() == len => Some(v.to_vec()),
            Some(_) => None,
        }
    };
    let kernel: Option<Vec<i64>> = match cx.n.attr_ints("kernel_shape") {
        Some(v) => Some(v.to_vec()),
        None => w[2..].iter().map(|d| d.known().and_then(|n| i64::try_from(n).ok())).collect(),
    };
    let auto_pad = cx.n.attr_str("auto_pad").unwrap_or("NOTSET");
    let parts = (kernel, list("strides", 1, k), list("dilations", 1, k), list("pads", 0, 2 * k), list("output_padding", 0, k));
    let (Some(kernel), Some(strides), Some(dil), Some(pads), Some(opad)) = parts else {
        out.extend((0..k).map(|_| cx.fresh()));
        return Ok(Some(out));
    };
    for i in 0..k {
        out.push(match (&x[i + 2], kernel.get(i)) {
            (Dim::Known(n), Some(&kk)) => {
                let n = *n as i64;
                let full = strides[i] * (n - 1) + opad[i] + (kk - 1) * dil[i] + 1;
                let o = match auto_pad {
                    "SAME_UPPER" | "SAME_LOWER" => n * strides[i],
                    _ => full - pads[i] - pads[i + k],
                };
                usize::try_from(o).map_or_else(|_| cx.fresh(), Dim::Known)
            }
            _ => cx.fresh(),
        });
    }
    Ok(Some(out))
}

/// Pads from the `pads` attribute (Pad-2) or a constant input (Pad-11+).
fn pad(cx: &Cx) -> Option<Vec<Dim>> {
    let x = cx.shape(0)?;
    let pads: Option<Vec<i64>> = match cx.n.attr_ints("pads") {
        Some(p) => Some(p.to_vec()),
        None => cx.ints(1),
    };
    let axes: Option<Vec<usize>> = if cx.has_input(3) {
        cx.ints(3).and_then(|a| a.iter().map(|&v| cx.axis(v, x.len()).ok()).collect())
    } else {
        Some((0..x.len()).collect())
    };
    let (Some(pads), Some(axes)) = (pads, axes) else { return Some(x.iter().map(|_| cx.fresh()).collect()) };
    if pads.len() != 2 * axes.len() {
        return Some(x.iter().map(|_| cx.fresh()).collect());
    }
    let mut out = x.to_vec();
    for (j, &a) in axes.iter().enumerate() {
        out[a] = match &x[a] {
            Dim::Known(n) => usize::try_from(*n as i64 + pads[j] + pads[j + axes.len()]).map_or_else(|_| cx.fresh(), Dim::Known),
            d if pads[j] == 0 && pads[j + axes.len()] == 0 => d.clone(),
            _ => cx.fresh(),
        };
    }
    Some(out)
}
