//! Trilu and EyeLike.

use super::common::{gather_or_fill, index_map};
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Data, Tensor};

/// Trilu: keeps the upper (`upper`=1: `j - i >= k`) or lower (`j - i <= k`) triangle of the
/// last two axes and zeroes the rest.
pub fn trilu(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if x.rank() < 2 {
        bail!("Trilu needs rank 2 or more, got {:?}", x.shape());
    }
    let k = match opt(inputs, 1) {
        Some(t) => match t.to_i64_vec()?.as_slice() {
            [k] => *k,
            v => bail!("k must be one integer, got {v:?}"),
        },
        None => 0,
    };
    let upper = ctx.attr_i("upper", 1) != 0;
    let cols = x.shape()[x.rank() - 1];
    let rows = x.shape()[x.rank() - 2];
    let idx: Vec<Option<usize>> = (0..x.len())
        .map(|f| {
            let (i, j) = (((f / cols.max(1)) % rows.max(1)) as i64, (f % cols.max(1)) as i64);
            let keep = if upper { j - i >= k } else { j - i <= k };
            keep.then_some(f)
        })
        .collect();
    Ok(vec![gather_or_fill(x, &Data::zeros(x.dtype(), 1), x.shape().to_vec(), &idx)?])
}

/// EyeLike: a 2-D tensor shaped like the input with ones on diagonal `k`, of type `dtype`
/// (default: the input's).
pub fn eye_like(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let [rows, cols] = *x.shape() else { bail!("EyeLike needs a 2-D input, got {:?}", x.shape()) };
    let dtype = match ctx.node.attr_int("dtype") {
        Some(code) => {
            DType::from_onnx(code as i32).ok_or_else(|| OpError::Invalid(format!("attribute 'dtype' {code} is not a supported type")))?
        }
        None => x.dtype(),
    };
    let k = ctx.attr_i("k", 0);
    let v: Vec<f64> = index_map(&[rows, cols], |o| usize::from(o[1] as i64 - o[0] as i64 == k)).into_iter().map(|b| b as f64).collect();
    Ok(vec![Tensor::new(vec![rows, cols], Data::from_f64_vec(dtype, &v)?)?])
}
