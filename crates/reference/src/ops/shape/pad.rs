//! Pad and CenterCropPad.

use super::common::{axes_list, checked_shape, for_each_index, gather_or_fill};
use crate::util::{ints, opt, req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

/// Pad: `pads` (begins then ends, negative crops) and the constant `value` as attributes
/// before opset 11, inputs after; `axes` input from opset 18.
pub fn pad(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let mode = match ctx.attr_s("mode", "constant") {
        "constant" => Mode::Constant,
        "reflect" => Mode::Reflect,
        "edge" => Mode::Edge,
        "wrap" => Mode::Wrap,
        m => bail!("attribute 'mode' must be constant, reflect, edge or wrap, got '{m}'"),
    };
    let (pads, fill, axes) = if ctx.opset() < 11 {
        let pads = ctx.attr_ints("pads").or_else(|| ctx.attr_ints("paddings"));
        let Some(pads) = pads else { bail!("attribute 'pads' is required") };
        let fill = Data::from_f64_vec(x.dtype(), &[ctx.attr_f("value", 0.0) as f64])?;
        (pads.to_vec(), fill, None)
    } else {
        let fill = match opt(inputs, 2) {
            Some(v) if v.len() == 1 && v.dtype() == x.dtype() => v.data().clone(),
            Some(v) => bail!("constant_value must be one {} element, got {} {:?}", x.dtype(), v.dtype(), v.shape()),
            None => Data::zeros(x.dtype(), 1),
        };
        let axes = opt(inputs, 3).map(ints).transpose()?;
        (ints(req(inputs, 1)?)?, fill, axes)
    };
    let rank = x.rank();
    let axes = match axes {
        Some(a) => axes_list(&a, rank)?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        bail!("pads {pads:?} must hold a begin and an end for each of {} axes", axes.len());
    }
    let mut begin = vec![0i64; rank];
    let mut end = vec![0i64; rank];
    for (k, &ax) in axes.iter().enumerate() {
        begin[ax] = pads[k];
        end[ax] = pads[k + axes.len()];
    }
    Ok(vec![pad_with(x, &begin, &end, mode, &fill)?])
}

/// CenterCropPad: crops or zero-pads each of `axes` (default all) to the size in input 1,
/// keeping the input centred.
pub fn center_crop_pad(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let sizes = ints(req(inputs, 1)?)?;
    let rank = x.rank();
    let axes = match ctx.attr_ints("axes") {
        Some(a) => axes_list(a, rank)?,
        None => (0..rank).collect(),
    };
    if sizes.len() != axes.len() || sizes.iter().any(|&s| s < 0) {
        bail!("shape {sizes:?} must hold one non-negative size for each of {} axes", axes.len());
    }
    let mut begin = vec![0i64; rank];
    let mut end = vec![0i64; rank];
    for (&ax, &want) in axes.iter().zip(&sizes) {
        let dim = x.shape()[ax] as i64;
        // An odd difference leaves the extra element (cropped or padded) at the end.
        let half = (want - dim).abs() / 2;
        begin[ax] = if want < dim { -half } else { half };
        end[ax] = want - dim - begin[ax];
    }
    Ok(vec![pad_with(x, &begin, &end, Mode::Constant, &Data::zeros(x.dtype(), 1))?])
}

/// Pads (or crops, where negative) each axis by `begin`/`end` elements. Crops apply first:
/// reflect, edge and wrap read the cropped axis (as onnxruntime does; it matters for wrap).
fn pad_with(x: &Tensor, begin: &[i64], end: &[i64], mode: Mode, fill: &Data) -> Result<Tensor, OpError> {
    let dims: Vec<i64> = (0..x.rank()).map(|a| x.shape()[a] as i64 + begin[a] + end[a]).collect();
    if let Some(a) = dims.iter().position(|&d| d < 0) {
        bail!("pads {begin:?} / {end:?} crop axis {a} of shape {:?} below zero", x.shape());
    }
    let shape = checked_shape(&dims)?;
    // For each axis and output position, the input position (None: the fill value).
    let mut maps: Vec<Vec<Option<usize>>> = Vec::with_capacity(x.rank());
    for (a, &out_dim) in shape.iter().enumerate() {
        // The kept part of the axis, [lo, lo + kept).
        let lo = (-begin[a]).max(0);
        let kept = x.shape()[a] as i64 - lo - (-end[a]).max(0);
        if kept <= 0 && out_dim > 0 && mode != Mode::Constant {
            bail!("cannot pad the empty (or cropped away) axis {a} in a non-constant mode");
        }
        let pad = begin[a].max(0);
        maps.push((0..out_dim as i64).map(|o| source(o - pad, kept, mode).map(|i| i + lo as usize)).collect());
    }
    let st = strides(x.shape());
    let mut idx = Vec::with_capacity(shape.iter().product());
    for_each_index(&shape, |o| {
        let mut f = Some(0);
        for (a, &i) in o.iter().enumerate() {
            f = match (f, maps[a][i]) {
                (Some(f), Some(s)) => Some(f + s * st[a]),
                _ => None,
            };
        }
        idx.push(f);
    });
    gather_or_fill(x, fill, shape, &idx)
}

/// The input position read for (possibly out-of-range) position `i` of an axis of size `dim`.
fn source(i: i64, dim: i64, mode: Mode) -> Option<usize> {
    let j = if (0..dim).contains(&i) {
        i
    } else {
        match mode {
            Mode::Constant => return None,
            Mode::Edge => i.clamp(0, dim - 1),
            Mode::Wrap => i.rem_euclid(dim),
            Mode::Reflect if dim == 1 => 0,
            Mode::Reflect => {
                let period = 2 * (dim - 1);
                let r = i.rem_euclid(period);
                if r < dim { r } else { period - r }
            }
        }
    };
    Some(j as usize)
}
