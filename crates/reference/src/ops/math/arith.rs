//! Arithmetic with numpy broadcasting: Add, Sub, Mul, Div, Mod, Pow.

use super::common::{Broadcast2, Int, broadcast2, float_dispatch, int_dispatch, num_binary};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Elem, Tensor};
use std::borrow::Cow;

type Out = Result<Vec<Tensor>, OpError>;

/// Before opset 7, `broadcast=1` with `axis` aligns B's dimensions with A's starting at `axis`
/// (instead of at the end): reshape B with trailing 1s so numpy broadcasting does the same.
pub fn legacy_rhs<'t>(ctx: &OpCtx, a: &Tensor, b: &'t Tensor) -> Result<Cow<'t, Tensor>, OpError> {
    if ctx.opset() >= 7 || ctx.attr_i("broadcast", 0) == 0 || !ctx.has_attr("axis") {
        return Ok(Cow::Borrowed(b));
    }
    let axis = crate::util::axis(ctx.attr_i("axis", 0), a.rank())?;
    let Some(trailing) = a.rank().checked_sub(axis + b.rank()) else {
        bail!("broadcast axis {axis} with B of rank {} does not fit A of rank {}", b.rank(), a.rank());
    };
    let mut shape = b.shape().to_vec();
    shape.extend(std::iter::repeat_n(1, trailing));
    Ok(Cow::Owned(b.clone().reshape(shape)?))
}

fn arith(ctx: &OpCtx, inputs: &[Option<&Tensor>], ff: fn(f64, f64) -> f64, fi: fn(i128, i128) -> Result<i128, OpError>) -> Out {
    let a = req(inputs, 0)?;
    let b = legacy_rhs(ctx, a, req(inputs, 1)?)?;
    Ok(vec![num_binary(a, &b, ff, fi)?])
}

pub fn add(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    arith(ctx, i, |x, y| x + y, |x, y| Ok(x.wrapping_add(y)))
}
pub fn sub(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    arith(ctx, i, |x, y| x - y, |x, y| Ok(x.wrapping_sub(y)))
}
pub fn mul(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    arith(ctx, i, |x, y| x * y, |x, y| Ok(x.wrapping_mul(y)))
}
pub fn div(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    // i128 division truncates toward zero, like C.
    arith(ctx, i, |x, y| x / y, |x, y| x.checked_div(y).ok_or_else(|| OpError::Invalid("integer division by zero".into())))
}

pub fn modulo(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let (a, b) = (req(inputs, 0)?, req(inputs, 1)?);
    let fmod = match ctx.attr_i("fmod", 0) {
        0 => false,
        1 => true,
        v => bail!("attribute 'fmod' must be 0 or 1, got {v}"),
    };
    // fmod=1: the remainder takes the dividend's sign (C fmod); fmod=0: the divisor's (Python).
    let ff = move |x: f64, y: f64| {
        let r = x % y;
        if !fmod && r != 0.0 && (r < 0.0) != (y < 0.0) { r + y } else { r }
    };
    let fi = move |x: i128, y: i128| {
        let r = x.checked_rem(y).ok_or_else(|| OpError::Invalid("integer modulo by zero".into()))?;
        Ok(if !fmod && r != 0 && (r < 0) != (y < 0) { r + y } else { r })
    };
    Ok(vec![num_binary(a, b, ff, fi)?])
}

/// Pow: the base and exponent may have different numeric types; the result has the base's.
pub fn pow(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let base = req(inputs, 0)?;
    let exp = legacy_rhs(ctx, base, req(inputs, 1)?)?;
    let Broadcast2 { shape, a: ib, b: ie } = broadcast2(base.shape(), exp.shape())?;
    let ef = exp.to_f64_vec()?;
    let out = if base.dtype().is_float() {
        float_dispatch!(base.dtype(), T => {
            let bv = base.as_slice::<T>()?;
            let v: Vec<T> = ib.iter().zip(&ie).map(|(&i, &j)| T::from_f64(bv[i].to_f64().powf(ef[j]))).collect();
            Tensor::from_vec(shape, v)?
        })
    } else {
        let ei = if exp.dtype().is_int() { Some(exp.to_i64_vec()?) } else { None };
        int_dispatch!(base.dtype(), T => {
            let bv = base.as_slice::<T>()?;
            let v: Vec<T> = ib
                .iter()
                .zip(&ie)
                .map(|(&i, &j)| match &ei {
                    Some(ei) => T::from_i128(int_pow(bv[i].to_i128(), ei[j])),
                    None => T::from_f64(bv[i].to_f64().powf(ef[j])),
                })
                .collect();
            Tensor::from_vec(shape, v)?
        })
    };
    Ok(vec![out])
}

/// Exact integer power with wrapping; negative exponents truncate 1/b^e toward zero.
fn int_pow(b: i128, e: i64) -> i128 {
    if e < 0 {
        return match b {
            1 => 1,
            -1 if e % 2 == 0 => 1,
            -1 => -1,
            _ => 0,
        };
    }
    let (mut acc, mut base, mut e) = (1i128, b, e as u64);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        e >>= 1;
    }
    acc
}

#[cfg(test)]
mod tests {
    #[test]
    fn int_pow_wraps_and_truncates() {
        assert_eq!(super::int_pow(3, 4), 81);
        assert_eq!(super::int_pow(2, -1), 0);
        assert_eq!(super::int_pow(-1, -3), -1);
        assert_eq!(super::int_pow(2, 70) as i64, 0);
    }
}
