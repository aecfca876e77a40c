//! Resize (opset 10 to 21) and its predecessor Upsample (opset 7 to 9).
//!
//! Each axis is resampled independently: `coords` maps output positions to input positions,
//! `sample` turns those into weighted taps (nearest, linear, cubic, antialiased) and applies
//! them one axis at a time.

mod coords;
mod sample;

use super::common::axes_list;
use crate::util::{ints, opt, req};
use crate::{OpCtx, OpError, bail};
use coords::{Axis, Rounding, Transform};
use kiln_tensor::Tensor;
use sample::{Filter, Mode, resample};

/// Resize: scales or sizes (for all axes, or for `axes`), optional roi, and the attributes
/// choosing mode, coordinate transform, rounding, cubic coefficient, antialiasing and
/// aspect-ratio policy. Opset 10 takes only scales and maps coordinates asymmetrically.
pub fn resize(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let legacy = ctx.opset() < 11;
    let (roi, scales, sizes) = if legacy {
        (None, Some(req(inputs, 1)?), None)
    } else {
        let nonempty = |i| opt(inputs, i).filter(|t| !t.is_empty());
        (nonempty(1), nonempty(2), nonempty(3))
    };
    let rank = x.rank();
    let axes = match ctx.attr_ints("axes") {
        Some(a) => axes_list(a, rank)?,
        None => (0..rank).collect(),
    };
    let transform =
        if legacy { Transform::Asymmetric } else { Transform::parse(ctx.attr_s("coordinate_transformation_mode", "half_pixel"))? };
    let rounding = if legacy { Rounding::Floor } else { Rounding::parse(ctx.attr_s("nearest_mode", "round_prefer_floor"))? };
    let mode = mode(ctx.attr_s("mode", "nearest"), rounding, ctx)?;
    let roi = match roi {
        Some(r) if transform == Transform::TfCropAndResize => {
            let r = r.to_f64_vec()?;
            if r.len() != 2 * axes.len() {
                bail!("roi must hold a start and an end for each of {} axes, got {} values", axes.len(), r.len());
            }
            r
        }
        _ => [vec![0.0; axes.len()], vec![1.0; axes.len()]].concat(),
    };
    let mut plan: Vec<Axis> = x.shape().iter().map(|&d| Axis { input: d, output: d, scale: 1.0, roi: (0.0, 1.0) }).collect();
    for (k, &a) in axes.iter().enumerate() {
        plan[a].roi = (roi[k], roi[k + axes.len()]);
    }
    match (scales, sizes) {
        (Some(s), None) => {
            let s = s.to_f64_vec()?;
            if s.len() != axes.len() || s.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
                bail!("scales {s:?} must hold one positive scale for each of {} axes", axes.len());
            }
            for (&a, &v) in axes.iter().zip(&s) {
                let p = &mut plan[a];
                p.scale = v;
                // tf_crop_and_resize scales the region of interest, not the whole axis.
                let span = if transform == Transform::TfCropAndResize { p.roi.1 - p.roi.0 } else { 1.0 };
                p.output = out_len(p.input as f64 * span * v)?;
            }
        }
        (None, Some(s)) => sized(&mut plan, &axes, &ints(s)?, ctx.attr_s("keep_aspect_ratio_policy", "stretch"))?,
        _ => bail!("Resize needs exactly one of scales and sizes"),
    }
    let filter = Filter { mode, transform, antialias: ctx.attr_i("antialias", 0) != 0 };
    run(x, &plan, &filter, ctx.attr_f("extrapolation_value", 0.0) as f64)
}

/// Upsample (opset 7 to 9): scales from the attribute (7, 8) or input 1 (9); asymmetric
/// coordinates, nearest rounding down.
pub fn upsample(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let scales: Vec<f64> = match opt(inputs, 1) {
        Some(s) => s.to_f64_vec()?,
        None => {
            ctx.attr_floats("scales").ok_or_else(|| OpError::Invalid("Upsample needs scales".into()))?.iter().map(|&v| v as f64).collect()
        }
    };
    if scales.len() != x.rank() || scales.iter().any(|&v| !(v >= 1.0 && v.is_finite())) {
        bail!("scales {scales:?} must hold one scale of at least 1 per axis (rank {})", x.rank());
    }
    let mode = match ctx.attr_s("mode", "nearest") {
        "nearest" => Mode::Nearest(Rounding::Floor),
        "linear" | "bilinear" => Mode::Linear,
        m => bail!("attribute 'mode' must be nearest or linear, got '{m}'"),
    };
    let plan = x
        .shape()
        .iter()
        .zip(&scales)
        .map(|(&d, &s)| Ok(Axis { input: d, output: out_len(d as f64 * s)?, scale: s, roi: (0.0, 1.0) }))
        .collect::<Result<Vec<_>, OpError>>()?;
    run(x, &plan, &Filter { mode, transform: Transform::Asymmetric, antialias: false }, 0.0)
}

fn mode(name: &str, rounding: Rounding, ctx: &OpCtx) -> Result<Mode, OpError> {
    Ok(match name {
        "nearest" => Mode::Nearest(rounding),
        "linear" | "bilinear" | "trilinear" => Mode::Linear,
        "cubic" | "bicubic" => {
            Mode::Cubic { a: ctx.attr_f("cubic_coeff_a", -0.75) as f64, exclude_outside: ctx.attr_i("exclude_outside", 0) != 0 }
        }
        m => bail!("attribute 'mode' must be nearest, linear or cubic, got '{m}'"),
    })
}

/// Output sizes from `sizes`, with the aspect-ratio policy (stretch, not_larger, not_smaller).
fn sized(plan: &mut [Axis], axes: &[usize], sizes: &[i64], policy: &str) -> Result<(), OpError> {
    if sizes.len() != axes.len() || sizes.iter().any(|&s| s < 0) {
        bail!("sizes {sizes:?} must hold one non-negative size for each of {} axes", axes.len());
    }
    let ratios: Vec<f64> = axes.iter().zip(sizes).map(|(&a, &s)| s as f64 / plan[a].input as f64).collect();
    let common = match policy {
        "stretch" => None,
        "not_larger" => ratios.iter().copied().reduce(f64::min),
        "not_smaller" => ratios.iter().copied().reduce(f64::max),
        p => bail!("attribute 'keep_aspect_ratio_policy' must be stretch, not_larger or not_smaller, got '{p}'"),
    };
    for (k, &a) in axes.iter().enumerate() {
        let p = &mut plan[a];
        match common {
            Some(s) => {
                p.scale = s;
                p.output = out_len((s * p.input as f64 + 0.5).floor())?;
            }
            None => {
                p.output = sizes[k] as usize;
                p.scale = ratios[k];
            }
        }
    }
    Ok(())
}

/// `floor(v)` as an output length, refusing absurd values.
fn out_len(v: f64) -> Result<usize, OpError> {
    let n = v.floor();
    if !(0.0..=kiln_tensor::MAX_ELEMENTS as f64).contains(&n) {
        bail!("output length {v} is out of range");
    }
    Ok(n as usize)
}

fn run(x: &Tensor, plan: &[Axis], filter: &Filter, extrapolation: f64) -> Result<Vec<Tensor>, OpError> {
    if let Some(a) = plan.iter().position(|p| p.input == 0 && p.output > 0) {
        bail!("cannot resize the empty axis {a} of {:?} to a non-empty one", x.shape());
    }
    // When no axis changes length the input passes through unchanged, whatever the scales
    // (3 x 1.3 rounds down to 3): onnxruntime does this, and so do the resizes of image
    // libraries. tf_crop_and_resize still crops.
    if filter.transform != Transform::TfCropAndResize && plan.iter().all(|p| p.output == p.input) {
        return Ok(vec![x.clone()]);
    }
    let shape: Vec<usize> = plan.iter().map(|p| p.output).collect();
    kiln_tensor::checked_numel(&shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    let taps: Vec<_> = plan.iter().map(|p| filter.taps(p)).collect();
    Ok(vec![resample(x, shape, &taps, extrapolation)?])
}
