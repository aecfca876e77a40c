//! Helpers shared by kernels: input access, axes, strides and broadcasting.

use crate::OpError;
use kiln_tensor::{Elem, Tensor};

/// Input `i`, which the op requires.
pub fn req<'t>(inputs: &[Option<&'t Tensor>], i: usize) -> Result<&'t Tensor, OpError> {
    inputs.get(i).copied().flatten().ok_or_else(|| OpError::Invalid(format!("input {i} is required")))
}

/// Input `i` if given (absent, or given as an empty name).
pub fn opt<'t>(inputs: &[Option<&'t Tensor>], i: usize) -> Option<&'t Tensor> {
    inputs.get(i).copied().flatten()
}

/// Maps a possibly negative axis into `0..rank`.
pub fn axis(a: i64, rank: usize) -> Result<usize, OpError> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r.max(1) && !(r == 0 && v == 0) {
        return Err(OpError::Invalid(format!("axis {a} is out of range for rank {rank}")));
    }
    Ok(v as usize)
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Numpy-style broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>, OpError> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(OpError::Invalid(format!("shapes {shapes:?} cannot be broadcast together")));
            }
        }
    }
    Ok(out)
}

/// For each element of `out_shape`, the flat index into a tensor of `shape` broadcast to it.
/// Linear in the output size.
pub fn broadcast_index(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let n: usize = out_shape.iter().product();
    let rank = out_shape.len();
    let off = rank - shape.len();
    let src_strides = strides(shape);
    // Effective stride per output axis (0 where broadcast).
    let eff: Vec<usize> = (0..rank)
        .map(|i| if i < off || shape[i - off] == 1 { 0 } else { src_strides[i - off] })
        .collect();
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; rank];
    let mut cur = 0usize;
    for _ in 0..n {
        idx.push(cur);
        for ax in (0..rank).rev() {
            counter[ax] += 1;
            cur += eff[ax];
            if counter[ax] < out_shape[ax] {
                break;
            }
            cur -= eff[ax] * counter[ax];
            counter[ax] = 0;
        }
    }
    idx
}

/// Applies `f` elementwise over two broadcast inputs of the same element type.
pub fn binary<T: Elem, U: Elem>(a: &Tensor, b: &Tensor, f: impl Fn(T, T) -> U) -> Result<Tensor, OpError> {
    let (av, bv) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let out: Vec<U> = if a.shape() == b.shape() {
        av.iter().zip(bv).map(|(&x, &y)| f(x, y)).collect()
    } else {
        let ia = broadcast_index(a.shape(), &shape);
        let ib = broadcast_index(b.shape(), &shape);
        ia.iter().zip(&ib).map(|(&i, &j)| f(av[i], bv[j])).collect()
    };
    Ok(Tensor::from_vec(shape, out)?)
}

/// Applies `f` elementwise to one tensor.
pub fn unary<T: Elem, U: Elem>(a: &Tensor, f: impl Fn(T) -> U) -> Result<Tensor, OpError> {
    let out: Vec<U> = a.as_slice::<T>()?.iter().map(|&x| f(x)).collect();
    Ok(Tensor::from_vec(a.shape().to_vec(), out)?)
}

/// Reads a 1-D (or scalar) integer tensor as i64s (shape, axes, pads... inputs).
pub fn ints(t: &Tensor) -> Result<Vec<i64>, OpError> {
    if !t.dtype().is_int() {
        return Err(OpError::Invalid(format!("expected an integer tensor, found {}", t.dtype())));
    }
    Ok(t.to_i64_vec()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_index_matches_numpy() {
        assert_eq!(broadcast_shapes(&[&[2, 1, 3], &[4, 1]]).unwrap(), vec![2, 4, 3]);
        assert_eq!(broadcast_index(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[], &[2]), vec![0, 0]);
        assert!(broadcast_shapes(&[&[2], &[3]]).is_err());
    }

    #[test]
    fn axis_normalises() {
        assert_eq!(axis(-1, 3).unwrap(), 2);
        assert!(axis(3, 3).is_err());
        assert!(axis(-4, 3).is_err());
    }
}
