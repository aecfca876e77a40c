//! Helpers of the shape family: element moves that work on every dtype (strings and 4-bit
//! types included), multi-index iteration, and reading shape-like inputs.

use crate::{OpError, bail};
use kiln_tensor::{Data, Elem, Tensor, checked_numel, with_elem};
use std::cmp::Ordering;

/// `data[i]` for each `i` of `idx`, for any dtype. Fails (rather than panics) on an index
/// out of range.
pub fn take(data: &Data, idx: &[usize]) -> Result<Data, OpError> {
    fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Result<Vec<T>, OpError> {
        idx.iter()
            .map(|&i| v.get(i).cloned().ok_or_else(|| OpError::Invalid(format!("element {i} is out of range ({} elements)", v.len()))))
            .collect()
    }
    fn pick_elem<T: Elem>(v: &[T], idx: &[usize]) -> Result<Data, OpError> {
        Ok(T::wrap(pick(v, idx)?))
    }
    match data {
        Data::I4(v) => Ok(Data::I4(pick(v, idx)?)),
        Data::U4(v) => Ok(Data::U4(pick(v, idx)?)),
        Data::String(v) => Ok(Data::String(pick(v, idx)?)),
        other => {
            with_elem!(other, v => pick_elem(v, idx), o => bail!("cannot move elements of {}", o.dtype()))
        }
    }
}

/// The elements of `parts` one after the other; all parts must share a dtype.
pub fn concat(parts: &[&Data]) -> Result<Data, OpError> {
    let Some(first) = parts.first() else { bail!("nothing to concatenate") };
    let dtype = first.dtype();
    if let Some(p) = parts.iter().find(|p| p.dtype() != dtype) {
        bail!("cannot concatenate {dtype} with {} elements", p.dtype());
    }
    fn cat<T: Clone>(parts: &[&Data], get: impl Fn(&Data) -> Option<&[T]>) -> Vec<T> {
        parts.iter().filter_map(|p| get(p)).flat_map(|s| s.iter().cloned()).collect()
    }
    fn cat_elem<T: Elem>(parts: &[&Data], _first: &[T]) -> Data {
        T::wrap(cat(parts, T::slice))
    }
    Ok(match first {
        Data::I4(_) => Data::I4(cat(parts, |d| if let Data::I4(v) = d { Some(v.as_slice()) } else { None })),
        Data::U4(_) => Data::U4(cat(parts, |d| if let Data::U4(v) = d { Some(v.as_slice()) } else { None })),
        Data::String(_) => Data::String(cat(parts, |d| if let Data::String(v) = d { Some(v.as_slice()) } else { None })),
        other => {
            with_elem!(other, v => cat_elem(parts, v), o => bail!("cannot concatenate {}", o.dtype()))
        }
    })
}

/// A tensor of `shape` whose elements are `src[idx[k]]`.
pub fn gather_flat(src: &Tensor, shape: Vec<usize>, idx: &[usize]) -> Result<Tensor, OpError> {
    Ok(Tensor::new(shape, take(src.data(), idx)?)?)
}

/// Like [`gather_flat`], but `None` picks the scalar `fill` (same dtype as `src`).
pub fn gather_or_fill(src: &Tensor, fill: &Data, shape: Vec<usize>, idx: &[Option<usize>]) -> Result<Tensor, OpError> {
    if fill.len() != 1 {
        bail!("the fill value must hold one element, it holds {}", fill.len());
    }
    let ext = concat(&[src.data(), fill])?;
    let n = src.len();
    let flat: Vec<usize> = idx.iter().map(|i| i.unwrap_or(n)).collect();
    Ok(Tensor::new(shape, take(&ext, &flat)?)?)
}

/// Calls `f` with every multi-index of `shape`, in row-major order (nothing for an empty shape).
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; shape.len()];
    loop {
        f(&idx);
        let mut ax = shape.len();
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
}

/// For every element of `out_shape` (row-major), the flat source index `f(multi_index)`.
pub fn index_map(out_shape: &[usize], mut f: impl FnMut(&[usize]) -> usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for_each_index(out_shape, |i| out.push(f(i)));
    out
}

/// Flat index of a multi-index with the given strides.
pub fn flat(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// Checks a shape's element count against Kiln's limit and converts it to `usize`s.
pub fn checked_shape(dims: &[i64]) -> Result<Vec<usize>, OpError> {
    checked_numel(dims)?;
    Ok(dims.iter().map(|&d| d as usize).collect())
}

/// Maps a possibly negative axis into `0..rank`; a scalar has no axis.
pub fn axis(a: i64, rank: usize) -> Result<usize, OpError> {
    if rank == 0 {
        bail!("axis {a} given for a scalar, which has no axes");
    }
    crate::util::axis(a, rank)
}

/// Normalises a list of possibly negative axes for `rank`, refusing duplicates.
pub fn axes_list(axes: &[i64], rank: usize) -> Result<Vec<usize>, OpError> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let ax = axis(a, rank)?;
        if out.contains(&ax) {
            bail!("axis {a} is repeated in {axes:?}");
        }
        out.push(ax);
    }
    Ok(out)
}

/// Reads an index element (Gather, Scatter... indices) with its negative form wrapped into
/// `0..dim`, or fails naming the index.
pub fn wrap_index(i: i64, dim: usize) -> Result<usize, OpError> {
    let d = dim as i64;
    let v = if i < 0 { i + d } else { i };
    if v < 0 || v >= d {
        bail!("index {i} is out of range for a dimension of size {dim}");
    }
    Ok(v as usize)
}

/// A total order over elements `i` and `j` of `data` (numbers by value with NaN last,
/// strings lexicographically).
pub fn elem_order(data: &Data) -> Result<Box<dyn Fn(usize, usize) -> Ordering + '_>, OpError> {
    fn by_value<T: Elem>(v: &[T]) -> Box<dyn Fn(usize, usize) -> Ordering + '_> {
        Box::new(move |i, j| {
            let (a, b) = (v[i], v[j]);
            match a.partial_cmp(&b) {
                Some(o) => o,
                // NaN: after every number, equal to another NaN.
                None => a.partial_cmp(&a).is_none().cmp(&b.partial_cmp(&b).is_none()),
            }
        })
    }
    Ok(match data {
        Data::I4(v) => Box::new(move |i, j| v[i].cmp(&v[j])),
        Data::U4(v) => Box::new(move |i, j| v[i].cmp(&v[j])),
        Data::String(v) => Box::new(move |i, j| v[i].cmp(&v[j])),
        other => {
            with_elem!(other, v => by_value(v), o => bail!("cannot order {} elements", o.dtype()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_and_concat_work_on_strings() -> Result<(), OpError> {
        let d = Data::String(vec!["a".into(), "b".into()]);
        assert_eq!(take(&d, &[1, 0, 1])?, Data::String(vec!["b".into(), "a".into(), "b".into()]));
        assert!(take(&d, &[2]).is_err());
        let c = concat(&[&d, &d])?;
        assert_eq!(c.len(), 4);
        assert!(concat(&[&d, &Data::F32(vec![1.0])]).is_err());
        Ok(())
    }

    #[test]
    fn index_iteration_is_row_major() {
        let mut seen = Vec::new();
        for_each_index(&[2, 2], |i| seen.push(i.to_vec()));
        assert_eq!(seen, vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        let mut n = 0;
        for_each_index(&[], |_| n += 1);
        assert_eq!(n, 1, "a scalar has one element");
        for_each_index(&[3, 0], |_| n += 1);
        assert_eq!(n, 1);
    }
}
