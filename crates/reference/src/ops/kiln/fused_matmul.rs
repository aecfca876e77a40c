//! kiln::FusedMatMul: a matrix product, an optional bias and an activation.
//!
//! Inputs A, B and an optional bias C. With any of Gemm's attributes (transA, transB, alpha,
//! beta) the product is `Gemm(A, B, C)` (2-D, as Gemm); without them it is `MatMul(A, B)`
//! (numpy batching) followed by `Add(·, C)` when C is given. Then the activation of
//! `common::activation`.

use super::common::{activation, main_attrs, step};
use crate::util::{opt, req};
use crate::{OpCtx, OpError};
use kiln_tensor::Tensor;
use std::collections::BTreeMap;

const GEMM_ATTRS: &[&str] = &["transA", "transB", "alpha", "beta"];

pub fn fused_matmul(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (a, b, c) = (req(inputs, 0)?, req(inputs, 1)?, opt(inputs, 2));
    let attrs = main_attrs(ctx);
    let y = if GEMM_ATTRS.iter().any(|k| attrs.contains_key(*k)) {
        step(ctx, "Gemm", attrs, &[Some(a), Some(b), c])?
    } else {
        let p = step(ctx, "MatMul", BTreeMap::new(), &[Some(a), Some(b)])?;
        match c {
            Some(c) => step(ctx, "Add", BTreeMap::new(), &[Some(&p), Some(c)])?,
            None => p,
        }
    };
    Ok(vec![activation(ctx, y)?])
}
