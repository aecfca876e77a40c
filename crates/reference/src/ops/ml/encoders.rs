//! ai.onnx.ml encoders: OneHotEncoder (each element becomes a one-hot row over the categories,
//! output X.shape + [categories], float; unknown values give a zero row unless `zeros` is 0),
//! CategoryMapper (strings <-> int64 through the parallel `cats_strings` / `cats_int64s`
//! lists, with defaults) and FeatureVectorizer (inputs laid side by side along the last axis,
//! each cut or zero-padded to its `inputdimensions` width, float output).

use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::{Data, Tensor};
use std::collections::HashMap;

pub fn one_hot_encoder(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let zeros = ctx.attr_i("zeros", 1) != 0;
    // The category index of each element, None where it is not a category.
    let (idx, n_cats): (Vec<Option<usize>>, usize) = match x.data() {
        Data::String(v) => {
            let Some(cats) = ctx.node.attr("cats_strings").and_then(Attr::as_strings) else {
                bail!("OneHotEncoder on strings needs 'cats_strings'");
            };
            let table: HashMap<&str, usize> = cats.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
            (v.iter().map(|s| table.get(s.as_str()).copied()).collect(), cats.len())
        }
        _ if x.dtype().is_float() || x.dtype().is_int() => {
            let Some(cats) = ctx.attr_ints("cats_int64s") else { bail!("OneHotEncoder on numbers needs 'cats_int64s'") };
            let table: HashMap<i64, usize> = cats.iter().enumerate().map(|(i, &c)| (c, i)).collect();
            // Floats are truncated to int64 first, as onnxruntime does.
            let keys: Vec<i64> = if x.dtype().is_float() {
                x.to_f64_vec()?.into_iter().map(|f| f as i64).collect()
            } else {
                x.to_i64_vec()?
            };
            (keys.iter().map(|k| table.get(k).copied()).collect(), cats.len())
        }
        _ => bail!("OneHotEncoder needs a string or numeric input, got {}", x.dtype()),
    };
    let mut shape = x.shape().to_vec();
    shape.push(n_cats);
    kiln_tensor::checked_numel(&shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    let mut out = vec![0f32; idx.len() * n_cats];
    for (i, k) in idx.iter().enumerate() {
        match k {
            Some(k) => out[i * n_cats + k] = 1.0,
            None if zeros => {}
            None => bail!("OneHotEncoder: element {i} is not one of the categories (and 'zeros' is 0)"),
        }
    }
    Ok(vec![Tensor::from_vec(shape, out)?])
}

pub fn category_mapper(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let strings = ctx.node.attr("cats_strings").and_then(Attr::as_strings).unwrap_or_default();
    let ints = ctx.attr_ints("cats_int64s").unwrap_or_default();
    if strings.len() != ints.len() {
        bail!("CategoryMapper: 'cats_strings' has {} entries but 'cats_int64s' has {}", strings.len(), ints.len());
    }
    let shape = x.shape().to_vec();
    match x.data() {
        Data::String(v) => {
            let table: HashMap<&str, i64> = strings.iter().map(String::as_str).zip(ints.iter().copied()).collect();
            let default = ctx.attr_i("default_int64", -1);
            let out: Vec<i64> = v.iter().map(|s| table.get(s.as_str()).copied().unwrap_or(default)).collect();
            Ok(vec![Tensor::from_vec(shape, out)?])
        }
        Data::I64(v) => {
            let table: HashMap<i64, &str> = ints.iter().copied().zip(strings.iter().map(String::as_str)).collect();
            let default = ctx.attr_s("default_string", "_Unused");
            let out: Vec<String> = v.iter().map(|k| table.get(k).copied().unwrap_or(default).to_string()).collect();
            Ok(vec![Tensor::new(shape, Data::String(out))?])
        }
        _ => bail!("CategoryMapper needs a string or int64 input, got {}", x.dtype()),
    }
}

pub fn feature_vectorizer(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let dims = ctx.req_ints("inputdimensions")?;
    let given: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
    if given.len() != dims.len() {
        bail!("FeatureVectorizer has {} inputs but {} 'inputdimensions'", given.len(), dims.len());
    }
    if let Some(d) = dims.iter().find(|&&d| d < 0) {
        bail!("'inputdimensions' must not be negative, got {d}");
    }
    let total = dims.iter().try_fold(0usize, |a, &d| a.checked_add(d as usize)).ok_or_else(|| OpError::Invalid("'inputdimensions' overflow".into()))?;
    // Rows: the product of all axes but the last of the first input (1 for a 1-D input).
    let rows = match given.first() {
        Some(t) if t.shape().len() > 1 => t.shape()[..t.shape().len() - 1].iter().product(),
        _ => 1,
    };
    let mut out = vec![0f32; super::common::out_size(rows, total)?];
    let mut offset = 0;
    for (t, &d) in given.iter().zip(dims) {
        if !t.dtype().is_float() && !t.dtype().is_int() {
            bail!("FeatureVectorizer needs numeric inputs, got {}", t.dtype());
        }
        let width = t.shape().last().copied().unwrap_or(1);
        if t.len() != rows * width {
            bail!("FeatureVectorizer inputs disagree on the row count: {:?} for {rows} rows", t.shape());
        }
        let v = t.to_f64_vec()?;
        let d = d as usize;
        for r in 0..rows {
            for c in 0..width.min(d) {
                out[r * total + offset + c] = v[r * width + c] as f32;
            }
        }
        offset += d;
    }
    Ok(vec![Tensor::from_vec(vec![rows, total], out)?])
}
