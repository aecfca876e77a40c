//! ai.onnx.ml feature preprocessing: Scaler ((x - offset) * scale per feature, float output),
//! Normalizer (each row divided by its MAX, L1 or L2 norm; a zero norm leaves the row as it is)
//! and Imputer (values equal to the replaced value, or NaN when that is NaN, become the
//! per-feature imputed value; output in X's type).

use super::common::{Features, f32_matrix, floats_attr};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

/// A per-feature attribute of one value (for every feature) or one per feature.
fn per_feature(v: &[f64], cols: usize, name: &str) -> Result<Vec<f64>, OpError> {
    match v.len() {
        1 => Ok(vec![v[0]; cols]),
        n if n == cols => Ok(v.to_vec()),
        n => bail!("attribute '{name}' has {n} values for {cols} features (must be 1 or {cols})"),
    }
}

/// The last axis length of X (its feature count); a scalar has one.
fn last_dim(x: &Tensor) -> usize {
    x.shape().last().copied().unwrap_or(1)
}

pub fn scaler(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if !x.dtype().is_float() && !x.dtype().is_int() {
        bail!("Scaler needs a numeric input, got {}", x.dtype());
    }
    let cols = last_dim(x);
    let offset = per_feature(&floats_attr(ctx, "offset")?.unwrap_or_else(|| vec![0.0]), cols, "offset")?;
    let scale = per_feature(&floats_attr(ctx, "scale")?.unwrap_or_else(|| vec![1.0]), cols, "scale")?;
    let v: Vec<f32> = x.to_f64_vec()?.iter().enumerate().map(|(i, &a)| ((a - offset[i % cols]) * scale[i % cols]) as f32).collect();
    Ok(vec![Tensor::from_vec(x.shape().to_vec(), v)?])
}

pub fn normalizer(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = Features::of(req(inputs, 0)?, "Normalizer")?;
    let norm = ctx.attr_s("norm", "MAX");
    let mut out = x.v.clone();
    for row in out.chunks_mut(x.cols.max(1)) {
        let n = match norm {
            "MAX" => row.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "L1" => row.iter().map(|v| v.abs()).sum(),
            "L2" => row.iter().map(|v| v * v).sum::<f64>().sqrt(),
            other => bail!("attribute 'norm' must be MAX, L1 or L2, got '{other}'"),
        };
        if n != 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
    let t = f32_matrix(x.rows, x.cols, &out)?;
    Ok(vec![t.reshape(req(inputs, 0)?.shape().to_vec())?])
}

pub fn imputer(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let cols = last_dim(x);
    let shape = x.shape().to_vec();
    match x.data() {
        Data::I64(v) => {
            let Some(imputed) = ctx.attr_ints("imputed_value_int64s") else {
                bail!("Imputer on int64 input needs 'imputed_value_int64s'");
            };
            let imputed: Vec<f64> = imputed.iter().map(|&i| i as f64).collect();
            let imputed = per_feature(&imputed, cols, "imputed_value_int64s")?;
            let target = ctx.attr_i("replaced_value_int64", 0);
            let out: Vec<i64> = v.iter().enumerate().map(|(i, &a)| if a == target { imputed[i % cols] as i64 } else { a }).collect();
            Ok(vec![Tensor::from_vec(shape, out)?])
        }
        _ if x.dtype().is_float() || x.dtype().is_int() => {
            let Some(imputed) = floats_attr(ctx, "imputed_value_floats")? else {
                bail!("Imputer on {} input needs 'imputed_value_floats'", x.dtype());
            };
            let imputed = per_feature(&imputed, cols, "imputed_value_floats")?;
            let target = f64::from(ctx.attr_f("replaced_value_float", 0.0));
            let hit = |a: f64| if target.is_nan() { a.is_nan() } else { a == target };
            let out: Vec<f64> = x.to_f64_vec()?.iter().enumerate().map(|(i, &a)| if hit(a) { imputed[i % cols] } else { a }).collect();
            Ok(vec![Tensor::new(shape, Data::from_f64_vec(x.dtype(), &out)?)?])
        }
        _ => bail!("Imputer needs a numeric input, got {}", x.dtype()),
    }
}
