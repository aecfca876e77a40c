//! Generic helpers shared by the math kernels: dtype dispatch, float and integer elementwise
//! maps, fallible broadcasting, gathers over any element type, and index plans for ops that
//! work along one axis (lanes) or reduce over several (groups).
//!
//! Floats are computed in f64 and rounded back to the tensor's type; integers are computed
//! exactly in i128 and wrapped back to their type.

use crate::OpError;
use crate::util::{broadcast_index, broadcast_shapes, strides};
use kiln_tensor::{DType, Data, Elem, Tensor};

/// Integer element types, computed exactly in i128 and wrapped back.
pub trait Int: Elem {
    /// The type's smallest and largest values.
    const MIN: i128;
    const MAX: i128;
    fn to_i128(self) -> i128;
    /// Keeps the low bits of `v` (two's complement wrapping).
    fn from_i128(v: i128) -> Self;
}

macro_rules! int_impl {
    ($($t:ty),*) => {
        $(impl Int for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
            fn to_i128(self) -> i128 {
                self as i128
            }
            fn from_i128(v: i128) -> Self {
                v as $t
            }
        })*
    };
}
int_impl!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Runs `$body` with the type alias `$T` bound to the element type of float dtype `$dt`;
/// returns an error from the enclosing function for any other dtype.
macro_rules! float_dispatch {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            kiln_tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            kiln_tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            kiln_tensor::DType::F16 => {
                type $T = kiln_tensor::f16;
                $body
            }
            kiln_tensor::DType::BF16 => {
                type $T = kiln_tensor::bf16;
                $body
            }
            other => return Err($crate::OpError::Invalid(format!("element type {other} is not supported (expects a float type)"))),
        }
    };
}

/// Like [`float_dispatch`] for the integer dtypes (`$T: Int`).
macro_rules! int_dispatch {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            kiln_tensor::DType::I64 => {
                type $T = i64;
                $body
            }
            kiln_tensor::DType::I32 => {
                type $T = i32;
                $body
            }
            kiln_tensor::DType::I16 => {
                type $T = i16;
                $body
            }
            kiln_tensor::DType::I8 => {
                type $T = i8;
                $body
            }
            kiln_tensor::DType::U8 => {
                type $T = u8;
                $body
            }
            kiln_tensor::DType::U16 => {
                type $T = u16;
                $body
            }
            kiln_tensor::DType::U32 => {
                type $T = u32;
                $body
            }
            kiln_tensor::DType::U64 => {
                type $T = u64;
                $body
            }
            other => return Err($crate::OpError::Invalid(format!("element type {other} is not supported (expects an integer type)"))),
        }
    };
}

/// Like [`float_dispatch`] for every dtype with an [`Elem`] type (numbers and bool).
macro_rules! elem_dispatch {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            kiln_tensor::DType::Bool => {
                type $T = bool;
                $body
            }
            d if d.is_float() => $crate::ops::math::common::float_dispatch!(d, $T => $body),
            d => $crate::ops::math::common::int_dispatch!(d, $T => $body),
        }
    };
}

pub(crate) use {elem_dispatch, float_dispatch, int_dispatch};

/// Applies `f` (computed in f64) to every element of a float tensor.
pub fn float_unary(t: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor, OpError> {
    float_dispatch!(t.dtype(), T => map::<T, T>(t, |x| T::from_f64(f(x.to_f64()))))
}

/// Applies `f` (computed exactly in i128, wrapped back) to every element of an integer tensor.
pub fn int_unary(t: &Tensor, f: impl Fn(i128) -> i128) -> Result<Tensor, OpError> {
    int_dispatch!(t.dtype(), T => map::<T, T>(t, |x| T::from_i128(f(x.to_i128()))))
}

/// A numeric elementwise op: `ff` for float tensors, `fi` for integer ones.
pub fn num_unary(t: &Tensor, ff: impl Fn(f64) -> f64, fi: impl Fn(i128) -> i128) -> Result<Tensor, OpError> {
    if t.dtype().is_float() { float_unary(t, ff) } else { int_unary(t, fi) }
}

/// Maps every element of `t` (of element type `T`) through `f`.
pub fn map<T: Elem, U: Elem>(t: &Tensor, f: impl Fn(T) -> U) -> Result<Tensor, OpError> {
    let out: Vec<U> = t.as_slice::<T>()?.iter().map(|&x| f(x)).collect();
    Ok(Tensor::from_vec(t.shape().to_vec(), out)?)
}

/// Two shapes broadcast together: the output shape and, per output element, the flat index
/// into each input.
pub struct Broadcast2 {
    pub shape: Vec<usize>,
    pub a: Vec<usize>,
    pub b: Vec<usize>,
}

pub fn broadcast2(a: &[usize], b: &[usize]) -> Result<Broadcast2, OpError> {
    let shape = broadcast_shapes(&[a, b])?;
    let (ia, ib) = (broadcast_index(a, &shape), broadcast_index(b, &shape));
    Ok(Broadcast2 { shape, a: ia, b: ib })
}

/// Errors unless both inputs have the same element type.
pub fn same_dtype(a: &Tensor, b: &Tensor) -> Result<DType, OpError> {
    if a.dtype() != b.dtype() {
        return Err(OpError::Invalid(format!("inputs have different element types {} and {}", a.dtype(), b.dtype())));
    }
    Ok(a.dtype())
}

/// Applies a fallible `f` elementwise over two broadcast inputs of element type `T`.
pub fn try_binary<T: Elem, U: Elem>(a: &Tensor, b: &Tensor, f: impl Fn(T, T) -> Result<U, OpError>) -> Result<Tensor, OpError> {
    let (av, bv) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    let Broadcast2 { shape, a: ia, b: ib } = broadcast2(a.shape(), b.shape())?;
    let out: Vec<U> = ia.iter().zip(&ib).map(|(&i, &j)| f(av[i], bv[j])).collect::<Result<_, _>>()?;
    Ok(Tensor::from_vec(shape, out)?)
}

/// A float binary op computed in f64 over two broadcast inputs of the same float type.
pub fn float_binary(a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Result<Tensor, OpError> {
    float_dispatch!(same_dtype(a, b)?, T => try_binary::<T, T>(a, b, |x, y| Ok(T::from_f64(f(x.to_f64(), y.to_f64())))))
}

/// An integer binary op computed exactly in i128 (wrapped back) over two broadcast inputs.
pub fn int_binary(a: &Tensor, b: &Tensor, f: impl Fn(i128, i128) -> Result<i128, OpError>) -> Result<Tensor, OpError> {
    int_dispatch!(same_dtype(a, b)?, T => try_binary::<T, T>(a, b, |x, y| Ok(T::from_i128(f(x.to_i128(), y.to_i128())?))))
}

/// A numeric binary op: `ff` for float inputs, `fi` for integer ones.
pub fn num_binary(
    a: &Tensor,
    b: &Tensor,
    ff: impl Fn(f64, f64) -> f64,
    fi: impl Fn(i128, i128) -> Result<i128, OpError>,
) -> Result<Tensor, OpError> {
    if a.dtype().is_float() { float_binary(a, b, ff) } else { int_binary(a, b, fi) }
}

/// The elements of `data` at `idx`, for any element type (strings and 4-bit types included).
/// An index out of range is an error.
pub fn take(data: &Data, idx: &[usize]) -> Result<Data, OpError> {
    fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Result<Vec<T>, OpError> {
        idx.iter()
            .map(|&i| v.get(i).cloned().ok_or_else(|| OpError::Invalid(format!("index {i} is out of range for {} elements", v.len()))))
            .collect()
    }
    Ok(match data {
        Data::I4(v) => Data::I4(pick(v, idx)?),
        Data::U4(v) => Data::U4(pick(v, idx)?),
        Data::String(v) => Data::String(pick(v, idx)?),
        other => kiln_tensor::with_elem!(other, v => Elem::wrap(pick(v, idx)?), o => {
            return Err(OpError::Invalid(format!("element type {} cannot be gathered", o.dtype())))
        }),
    })
}

/// Elementwise choice between two equally long data of the same type: `a[k]` where
/// `mask[k]`, else `b[k]`.
pub fn select_data(mask: &[bool], a: &Data, b: &Data) -> Result<Data, OpError> {
    fn sel<T: Clone>(mask: &[bool], a: &[T], b: &[T]) -> Vec<T> {
        mask.iter().zip(a.iter().zip(b)).map(|(&m, (x, y))| if m { x.clone() } else { y.clone() }).collect()
    }
    macro_rules! variants {
        ($($v:ident),*) => {
            match (a, b) {
                $((Data::$v(x), Data::$v(y)) => Data::$v(sel(mask, x, y)),)*
                _ => return Err(OpError::Invalid(format!("inputs have different element types {} and {}", a.dtype(), b.dtype()))),
            }
        };
    }
    if a.len() != mask.len() || b.len() != mask.len() {
        return Err(OpError::Invalid(format!("select over {} elements got {} and {}", mask.len(), a.len(), b.len())));
    }
    Ok(variants!(F32, F64, F16, BF16, I64, I32, I16, I8, U8, U16, U32, U64, Bool, I4, U4, String))
}

/// The 1-D lanes of a shape along one axis: `outer` blocks before it, `len` along it and
/// `inner` elements after it. Lane `l` (of `outer * inner`) visits `index(l, 0..len)`.
#[derive(Clone, Copy, Debug)]
pub struct Lanes {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl Lanes {
    pub fn new(shape: &[usize], axis: usize) -> Lanes {
        Lanes {
            outer: shape[..axis].iter().product(),
            len: shape.get(axis).copied().unwrap_or(1),
            inner: shape.get(axis + 1..).map_or(1, |s| s.iter().product()),
        }
    }

    /// Lanes after coercing the shape to 2-D at `axis`: each lane is contiguous and spans
    /// every axis from `axis` on (the pre-opset-13 Softmax family).
    pub fn coerced_2d(shape: &[usize], axis: usize) -> Lanes {
        Lanes { outer: shape[..axis].iter().product(), len: shape[axis..].iter().product(), inner: 1 }
    }

    pub fn count(&self) -> usize {
        self.outer * self.inner
    }

    /// Flat index of element `k` of lane `lane`.
    pub fn index(&self, lane: usize, k: usize) -> usize {
        let (o, i) = (lane / self.inner, lane % self.inner);
        (o * self.len + k) * self.inner + i
    }

    /// Flat indices of lane `lane`, in order.
    pub fn indices(&self, lane: usize) -> impl Iterator<Item = usize> + Clone + '_ {
        (0..self.len).map(move |k| self.index(lane, k))
    }
}

/// How a reduction over some axes reads its input: output element `o` reduces the input
/// elements at `order[o * group..(o + 1) * group]`, in row-major order of the reduced axes.
pub struct ReducePlan {
    /// The output shape with reduced axes kept as 1.
    pub kept_shape: Vec<usize>,
    /// The output shape with reduced axes dropped.
    pub dropped_shape: Vec<usize>,
    pub order: Vec<usize>,
    pub group: usize,
}

impl ReducePlan {
    /// `axes` are normalised (in `0..rank`); duplicates are ignored.
    pub fn new(shape: &[usize], axes: &[usize]) -> ReducePlan {
        let reduced = |i: usize| axes.contains(&i);
        let rank = shape.len();
        // Kept axes first, then reduced ones: a row-major walk of this permutation visits
        // each output element's group contiguously.
        let perm: Vec<usize> = (0..rank).filter(|&i| !reduced(i)).chain((0..rank).filter(|&i| reduced(i))).collect();
        let st = strides(shape);
        let pshape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let pstride: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
        let n: usize = shape.iter().product();
        let mut order = Vec::with_capacity(n);
        let mut counter = vec![0usize; rank];
        let mut cur = 0usize;
        for _ in 0..n {
            order.push(cur);
            for ax in (0..rank).rev() {
                counter[ax] += 1;
                cur += pstride[ax];
                if counter[ax] < pshape[ax] {
                    break;
                }
                cur -= pstride[ax] * counter[ax];
                counter[ax] = 0;
            }
        }
        ReducePlan {
            kept_shape: (0..rank).map(|i| if reduced(i) { 1 } else { shape[i] }).collect(),
            dropped_shape: (0..rank).filter(|&i| !reduced(i)).map(|i| shape[i]).collect(),
            order,
            group: (0..rank).filter(|&i| reduced(i)).map(|i| shape[i]).product(),
        }
    }

    /// Number of output elements.
    pub fn outputs(&self) -> usize {
        self.kept_shape.iter().product()
    }

    /// Input indices of output element `o`.
    pub fn group(&self, o: usize) -> &[usize] {
        &self.order[o * self.group..(o + 1) * self.group]
    }
}

/// Normalises axes (negative counted from the end) into `0..rank`, refusing duplicates.
pub fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, OpError> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let v = crate::util::axis(a, rank)?;
        if out.contains(&v) {
            return Err(OpError::Invalid(format!("axis {a} is repeated in {axes:?}")));
        }
        out.push(v);
    }
    Ok(out)
}

/// The error function, accurate to about 1e-15: the series
/// erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)), whose terms are all
/// positive (no cancellation); |erf(x)| rounds to 1 beyond |x| = 6.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() >= 6.0 {
        return x.signum();
    }
    let x2 = x * x;
    let (mut term, mut sum) = (x, x);
    let mut k = 0.0;
    while term.abs() > 1e-17 * sum.abs() {
        k += 1.0;
        term *= 2.0 * x2 / (2.0 * k + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x2).exp() * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_values() {
        assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-14);
        assert!((erf(-2.0) + 0.995_322_265_018_952_7).abs() < 1e-14);
        assert!((erf(4.0) - 0.999_999_984_582_742_1).abs() < 1e-14);
        assert_eq!(erf(0.0), 0.0);
    }

    #[test]
    fn reduce_plan_groups_middle_axis() {
        let p = ReducePlan::new(&[2, 3, 2], &[1]);
        assert_eq!(p.kept_shape, vec![2, 1, 2]);
        assert_eq!(p.group(0), &[0, 2, 4]);
        assert_eq!(p.group(1), &[1, 3, 5]);
        assert_eq!(p.group(3), &[7, 9, 11]);
    }

    #[test]
    fn lanes_index() {
        let l = Lanes::new(&[2, 3, 4], 1);
        assert_eq!((l.outer, l.len, l.inner), (2, 3, 4));
        assert_eq!(l.indices(5).collect::<Vec<_>>(), vec![13, 17, 21]);
    }
}
