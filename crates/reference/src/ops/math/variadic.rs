//! Variadic elementwise ops with numpy broadcasting over all inputs: Sum, Mean, Max, Min.

use super::common::{Int, int_dispatch};
use crate::util::{broadcast_index, broadcast_shapes};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

/// Folds the broadcast inputs elementwise: floats in f64 (`finish` gets the fold and the
/// input count), integers exactly in i128.
fn fold(
    inputs: &[Option<&Tensor>],
    ff: impl Fn(f64, f64) -> f64,
    finish: impl Fn(f64, usize) -> f64,
    fi: impl Fn(i128, i128) -> i128,
) -> Result<Tensor, OpError> {
    let ts: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
    let Some(first) = ts.first() else { bail!("expects at least one input") };
    let dt = first.dtype();
    if let Some(t) = ts.iter().find(|t| t.dtype() != dt) {
        bail!("inputs have different element types {dt} and {}", t.dtype());
    }
    let shapes: Vec<&[usize]> = ts.iter().map(|t| t.shape()).collect();
    let shape = broadcast_shapes(&shapes)?;
    let idx: Vec<Vec<usize>> = ts.iter().map(|t| broadcast_index(t.shape(), &shape)).collect();
    let n: usize = shape.iter().product();
    if dt.is_float() {
        let vals: Vec<Vec<f64>> = ts.iter().map(|t| t.to_f64_vec()).collect::<Result<_, _>>()?;
        let out: Vec<f64> = (0..n)
            .map(|k| {
                let acc = (1..ts.len()).fold(vals[0][idx[0][k]], |acc, t| ff(acc, vals[t][idx[t][k]]));
                finish(acc, ts.len())
            })
            .collect();
        return Ok(Tensor::new(shape, Data::from_f64_vec(dt, &out)?)?);
    }
    int_dispatch!(dt, T => {
        let vals: Vec<&[T]> = ts.iter().map(|t| t.as_slice::<T>()).collect::<Result<_, _>>()?;
        let out: Vec<T> = (0..n)
            .map(|k| {
                let acc = (1..ts.len()).fold(vals[0][idx[0][k]].to_i128(), |acc, t| fi(acc, vals[t][idx[t][k]].to_i128()));
                T::from_i128(acc)
            })
            .collect();
        Ok(Tensor::from_vec(shape, out)?)
    })
}

fn nan_or(x: f64, y: f64, f: fn(f64, f64) -> f64) -> f64 {
    if x.is_nan() || y.is_nan() { f64::NAN } else { f(x, y) }
}

pub fn sum(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    Ok(vec![fold(i, |x, y| x + y, |s, _| s, i128::wrapping_add)?])
}
pub fn mean(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    if let Some(t) = i.iter().flatten().find(|t| !t.dtype().is_float()) {
        bail!("Mean expects float inputs, got {}", t.dtype());
    }
    Ok(vec![fold(i, |x, y| x + y, |s, n| s / n as f64, i128::wrapping_add)?])
}
pub fn max(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    Ok(vec![fold(i, |x, y| nan_or(x, y, f64::max), |s, _| s, i128::max)?])
}
pub fn min(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    Ok(vec![fold(i, |x, y| nan_or(x, y, f64::min), |s, _| s, i128::min)?])
}
