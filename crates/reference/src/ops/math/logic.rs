//! Logical, comparison and bitwise ops with numpy broadcasting.

use super::arith::legacy_rhs;
use super::common::{Broadcast2, broadcast2, elem_dispatch, int_binary, same_dtype, try_binary};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Data, Tensor};

type Out = Result<Vec<Tensor>, OpError>;

fn logical(ctx: &OpCtx, inputs: &[Option<&Tensor>], f: fn(bool, bool) -> bool) -> Out {
    let a = req(inputs, 0)?;
    let b = legacy_rhs(ctx, a, req(inputs, 1)?)?;
    if a.dtype() != DType::Bool || b.dtype() != DType::Bool {
        bail!("expects bool inputs, got {} and {}", a.dtype(), b.dtype());
    }
    Ok(vec![try_binary::<bool, bool>(a, &b, |x, y| Ok(f(x, y)))?])
}

pub fn and(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    logical(ctx, i, |x, y| x && y)
}
pub fn or(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    logical(ctx, i, |x, y| x || y)
}
pub fn xor(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    logical(ctx, i, |x, y| x != y)
}

/// Compares two inputs of the same type elementwise. Integers compare exactly, floats by
/// IEEE rules (NaN is unordered and unequal), strings (Equal only) by value.
fn compare(ctx: &OpCtx, inputs: &[Option<&Tensor>], f: fn(std::cmp::Ordering) -> bool) -> Out {
    let a = req(inputs, 0)?;
    let b = legacy_rhs(ctx, a, req(inputs, 1)?)?;
    let dt = same_dtype(a, &b)?;
    if let (Data::String(x), Data::String(y)) = (a.data(), b.data()) {
        let Broadcast2 { shape, a: ia, b: ib } = broadcast2(a.shape(), b.shape())?;
        let v: Vec<bool> = ia.iter().zip(&ib).map(|(&i, &j)| f(x[i].cmp(&y[j]))).collect();
        return Ok(vec![Tensor::from_vec(shape, v)?]);
    }
    let t = elem_dispatch!(dt, T => try_binary::<T, bool>(a, &b, |x, y| Ok(x.partial_cmp(&y).is_some_and(f)))?);
    Ok(vec![t])
}

pub fn equal(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    compare(ctx, i, |o| o.is_eq())
}
pub fn less(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    compare(ctx, i, |o| o.is_lt())
}
pub fn greater(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    compare(ctx, i, |o| o.is_gt())
}
pub fn less_or_equal(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    compare(ctx, i, |o| o.is_le())
}
pub fn greater_or_equal(ctx: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    compare(ctx, i, |o| o.is_ge())
}

fn bitwise(inputs: &[Option<&Tensor>], f: fn(i128, i128) -> i128) -> Out {
    Ok(vec![int_binary(req(inputs, 0)?, req(inputs, 1)?, |x, y| Ok(f(x, y)))?])
}

pub fn bitwise_and(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    bitwise(i, |x, y| x & y)
}
pub fn bitwise_or(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    bitwise(i, |x, y| x | y)
}
pub fn bitwise_xor(_: &OpCtx, i: &[Option<&Tensor>]) -> Out {
    bitwise(i, |x, y| x ^ y)
}

/// BitShift over unsigned integers; shifting by the type's width or more gives 0.
pub fn bit_shift(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Out {
    let (x, y) = (req(inputs, 0)?, req(inputs, 1)?);
    let left = match ctx.attr_s("direction", "") {
        "LEFT" => true,
        "RIGHT" => false,
        d => bail!("attribute 'direction' must be \"LEFT\" or \"RIGHT\", got {d:?}"),
    };
    let bits = match x.dtype() {
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => x.dtype().bits() as i128,
        d => bail!("BitShift expects unsigned integers, got {d}"),
    };
    let t = int_binary(x, y, move |v, s| {
        Ok(if s >= bits {
            0
        } else if left {
            // Keep only the type's bits so the i128 never overflows; the result wraps.
            (v << s) & ((1i128 << bits) - 1)
        } else {
            v >> s
        })
    })?;
    Ok(vec![t])
}
