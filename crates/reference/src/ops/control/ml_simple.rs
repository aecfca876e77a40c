//! Two small ai.onnx.ml ops: Binarizer (1 where x > threshold, else 0, in x's type) and
//! ArrayFeatureExtractor (selects indices along the last axis; a 1-D input gives [1, k]).

use super::common::take;
use crate::util::{ints, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

pub fn binarizer(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if x.dtype() == kiln_tensor::DType::String {
        bail!("Binarizer needs a numeric tensor, got {}", x.dtype());
    }
    let threshold = ctx.attr_f("threshold", 0.0) as f64;
    let v: Vec<f64> = x.to_f64_vec()?.into_iter().map(|a| if a > threshold { 1.0 } else { 0.0 }).collect();
    Ok(vec![Tensor::new(x.shape().to_vec(), Data::from_f64_vec(x.dtype(), &v)?)?])
}

pub fn array_feature_extractor(_ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, y) = (req(inputs, 0)?, req(inputs, 1)?);
    let Some(&c) = x.shape().last() else { bail!("ArrayFeatureExtractor needs an input of rank >= 1") };
    let sel = ints(y)?;
    if let Some(bad) = sel.iter().find(|&&i| i < 0 || i as usize >= c) {
        bail!("index {bad} is out of range for a last axis of {c}");
    }
    let rows = x.len().checked_div(c).unwrap_or(0);
    let mut idx = Vec::with_capacity(rows * sel.len());
    for r in 0..rows {
        idx.extend(sel.iter().map(|&i| r * c + i as usize));
    }
    let mut shape = x.shape().to_vec();
    if shape.len() == 1 {
        shape.insert(0, 1);
    }
    if let Some(last) = shape.last_mut() {
        *last = sel.len();
    }
    Ok(vec![Tensor::new(shape, take(x.data(), &idx)?)?])
}
