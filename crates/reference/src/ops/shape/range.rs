//! Range.

use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

/// Range: `start, start + delta, ...` up to (excluding) `limit`. Integers are exact.
pub fn range(_ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (s, l, d) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
    if s.len() != 1 || l.len() != 1 || d.len() != 1 || s.dtype() != l.dtype() || s.dtype() != d.dtype() {
        bail!("start, limit and delta must be scalars of one type");
    }
    let dtype = s.dtype();
    let data = if dtype.is_int() {
        let one = |t: &Tensor| t.to_i64_vec().map(|v| v[0]);
        let (start, limit, delta) = (one(s)?, one(l)?, one(d)?);
        if delta == 0 {
            bail!("delta must not be 0");
        }
        let (diff, step) = (limit as i128 - start as i128, delta as i128);
        let n = if diff != 0 && (diff > 0) == (step > 0) { (diff.abs() + step.abs() - 1) / step.abs() } else { 0 };
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= kiln_tensor::MAX_ELEMENTS)
            .ok_or_else(|| OpError::Invalid(format!("range of {n} elements is too large")))?;
        let v: Vec<i64> = (0..n as i64).map(|i| start.wrapping_add(i.wrapping_mul(delta))).collect();
        Tensor::from_vec(vec![n], v)?.cast(dtype)?.into_data()
    } else {
        let one = |t: &Tensor| t.to_f64_vec().map(|v| v[0]);
        let (start, limit, delta) = (one(s)?, one(l)?, one(d)?);
        if delta == 0.0 || !delta.is_finite() {
            bail!("delta must be finite and non-zero, got {delta}");
        }
        let n = ((limit - start) / delta).ceil().max(0.0);
        if !(0.0..=kiln_tensor::MAX_ELEMENTS as f64).contains(&n) {
            bail!("range of {n} elements is too large");
        }
        let v: Vec<f64> = (0..n as usize).map(|i| start + i as f64 * delta).collect();
        Data::from_f64_vec(dtype, &v)?
    };
    let n = data.len();
    Ok(vec![Tensor::new(vec![n], data)?])
}
