//! QuantizeLinear, DequantizeLinear (per-tensor, per-axis, blocked) and DynamicQuantizeLinear.

use super::common::{floats, from_f64};
use crate::util::{axis, opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Data, Tensor};

/// For each element of a tensor of shape `xs`, the index of its scale / zero point in a
/// parameter of shape `ps`: one value, one per slice of `axis`, or one per block of
/// `block` elements along `axis` (a parameter of the same rank as x).
pub fn param_index(ctx: &OpCtx, xs: &[usize], ps: &[usize]) -> Result<Vec<usize>, OpError> {
    let total: usize = xs.iter().product();
    let pn: usize = ps.iter().product();
    if pn == 1 && ps.len() <= 1 {
        return Ok(vec![0; total]);
    }
    let ax = axis(ctx.attr_i("axis", 1), xs.len())?;
    let block = ctx.attr_i("block_size", 0);
    let inner: usize = xs[ax + 1..].iter().product();
    if block <= 0 {
        if ps.len() != 1 || ps[0] != xs[ax] {
            bail!("a per-axis scale must be 1-D of length {} (axis {ax} of {xs:?}), got {ps:?}", xs[ax]);
        }
        return Ok((0..total).map(|i| (i / inner.max(1)) % xs[ax]).collect());
    }
    let block = block as usize;
    let ok = ps.len() == xs.len() && (0..xs.len()).all(|d| if d == ax { ps[d] == xs[d].div_ceil(block) } else { ps[d] == xs[d] });
    if !ok {
        bail!("a blocked scale for {xs:?} (axis {ax}, block {block}) has the wrong shape {ps:?}");
    }
    // Index into the parameter: the x index with the axis coordinate divided by the block.
    let pst = crate::util::strides(ps);
    let xst = crate::util::strides(xs);
    Ok((0..total)
        .map(|i| {
            (0..xs.len())
                .map(|d| {
                    let c = (i / xst[d]) % xs[d];
                    let c = if d == ax { c / block } else { c };
                    c * pst[d]
                })
                .sum()
        })
        .collect())
}

/// The saturation range of a quantised integer type.
pub fn int_range(dt: DType) -> Result<(f64, f64), OpError> {
    Ok(match dt {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::U16 => (0.0, 65535.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::U4 => (0.0, 15.0),
        DType::I4 => (-8.0, 7.0),
        other => bail!("quantised type {other} is not supported"),
    })
}

/// Rounds `x / scale` half to even in x's precision, adds `zp` and saturates to `dt`.
pub fn quantize_value(x: f64, scale: f64, zp: f64, single: bool, (lo, hi): (f64, f64)) -> f64 {
    let q = x / scale;
    let q = if single { q as f32 as f64 } else { q };
    (q.round_ties_even() + zp).clamp(lo, hi)
}

pub fn quantize_linear(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, scale) = (req(inputs, 0)?, req(inputs, 1)?);
    let zp = opt(inputs, 2);
    let out_dt = match (zp, ctx.attr_i("output_dtype", 0)) {
        (Some(z), _) => z.dtype(),
        (None, 0) => DType::U8,
        (None, code) => DType::from_onnx(code as i32)
            .ok_or_else(|| OpError::Unsupported(format!("output_dtype {code} (float8 and others are not supported)")))?,
    };
    let range = int_range(out_dt)?;
    // x is a float tensor, or int32 (opsets 10 to 20).
    let xv = if x.dtype() == DType::I32 { x.to_f64_vec()? } else { floats(x, "x")? };
    let sv = floats(scale, "y_scale")?;
    let idx = param_index(ctx, x.shape(), scale.shape())?;
    let zv = match zp {
        Some(z) => {
            if z.len() != scale.len() {
                bail!("y_zero_point shape {:?} does not match y_scale shape {:?}", z.shape(), scale.shape());
            }
            z.to_f64_vec()?
        }
        None => vec![0.0; sv.len()],
    };
    let single = x.dtype().is_float() && x.dtype() != DType::F64;
    let q: Vec<f64> = xv.iter().zip(&idx).map(|(&v, &i)| quantize_value(v, sv[i], zv[i], single, range)).collect();
    Ok(vec![Tensor::new(x.shape().to_vec(), Data::from_f64_vec(out_dt, &q)?)?])
}

pub fn dequantize_linear(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, scale) = (req(inputs, 0)?, req(inputs, 1)?);
    if !x.dtype().is_int() {
        bail!("DequantizeLinear takes an integer input, got {} (float8 is not supported)", x.dtype());
    }
    let xv = x.to_f64_vec()?;
    let sv = floats(scale, "x_scale")?;
    let idx = param_index(ctx, x.shape(), scale.shape())?;
    let zv = match opt(inputs, 2) {
        Some(z) => {
            if z.len() != scale.len() || z.dtype() != x.dtype() {
                bail!("x_zero_point ({} {:?}) must match x's type and the scale's shape", z.dtype(), z.shape());
            }
            z.to_f64_vec()?
        }
        None => vec![0.0; sv.len()],
    };
    let y: Vec<f64> = xv.iter().zip(&idx).map(|(&v, &i)| (v - zv[i]) * sv[i]).collect();
    Ok(vec![from_f64(scale.dtype(), x.shape().to_vec(), &y)?])
}

pub fn dynamic_quantize_linear(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if x.dtype() != DType::F32 {
        bail!("DynamicQuantizeLinear takes a float input, got {}", x.dtype());
    }
    let xv = x.as_slice::<f32>()?;
    // The range always includes zero, so zero is exactly representable.
    let lo = xv.iter().copied().fold(0.0f32, f32::min);
    let hi = xv.iter().copied().fold(0.0f32, f32::max);
    let scale = (hi - lo) / 255.0;
    let (zp, y): (f32, Vec<u8>) = if scale == 0.0 {
        (0.0, vec![0; xv.len()])
    } else {
        let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
        let y = xv.iter().map(|&v| quantize_value(v as f64, scale as f64, zp as f64, true, (0.0, 255.0)) as u8).collect();
        (zp, y)
    };
    Ok(vec![
        Tensor::from_vec(x.shape().to_vec(), y)?,
        Tensor::scalar(scale),
        Tensor::scalar(zp as u8),
    ])
}
