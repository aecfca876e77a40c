//! MatMul (numpy semantics: 1-D promotion, broadcast batch axes) and MatMulInteger.

use super::common::{Acc, floats, from_f64, gemm_acc, numel};
use crate::util::{broadcast_index, broadcast_shapes, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Tensor};

/// Numpy `matmul` over row-major data of shapes `ash` and `bsh`; returns data and shape.
pub fn batched_matmul<T: Acc>(a: &[T], ash: &[usize], b: &[T], bsh: &[usize]) -> Result<(Vec<T>, Vec<usize>), OpError> {
    if ash.is_empty() || bsh.is_empty() {
        bail!("MatMul inputs must have rank >= 1, got shapes {ash:?} and {bsh:?}");
    }
    // 1-D promotion: a vector on the left is a row, on the right a column.
    let a_vec = ash.len() == 1;
    let b_vec = bsh.len() == 1;
    let ash: Vec<usize> = if a_vec { vec![1, ash[0]] } else { ash.to_vec() };
    let bsh: Vec<usize> = if b_vec { vec![bsh[0], 1] } else { bsh.to_vec() };
    let (m, k) = (ash[ash.len() - 2], ash[ash.len() - 1]);
    let (k2, n) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
    if k != k2 {
        bail!("MatMul inner dimensions differ: {ash:?} x {bsh:?}");
    }
    let a_batch = &ash[..ash.len() - 2];
    let b_batch = &bsh[..bsh.len() - 2];
    let batch = broadcast_shapes(&[a_batch, b_batch])?;
    let nb = numel(&batch)?;
    let ia = broadcast_index(a_batch, &batch);
    let ib = broadcast_index(b_batch, &batch);
    let mut out = vec![T::default(); numel(&[nb, m, n])?];
    for bi in 0..nb {
        let (ao, bo) = (ia[bi] * m * k, ib[bi] * k * n);
        gemm_acc(m, k, n, &a[ao..ao + m * k], &b[bo..bo + k * n], &mut out[bi * m * n..(bi + 1) * m * n]);
    }
    let mut shape = batch;
    if !a_vec {
        shape.push(m);
    }
    if !b_vec {
        shape.push(n);
    }
    Ok((out, shape))
}

pub fn matmul(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (a, b) = (req(inputs, 0)?, req(inputs, 1)?);
    if a.dtype() != b.dtype() {
        bail!("MatMul inputs must share an element type, got {} and {}", a.dtype(), b.dtype());
    }
    let dt = a.dtype();
    if dt.is_float() {
        let (out, shape) = batched_matmul(&floats(a, "A")?, a.shape(), &floats(b, "B")?, b.shape())?;
        return Ok(vec![from_f64(dt, shape, &out)?]);
    }
    if !dt.is_int() {
        bail!("MatMul does not take {dt} inputs");
    }
    let (out, shape) = batched_matmul(&a.to_i64_vec()?, a.shape(), &b.to_i64_vec()?, b.shape())?;
    Ok(vec![Tensor::from_vec(shape, out)?.cast(dt)?])
}

/// Subtracts a zero point (scalar, or per row of A / per column of B) from integer data.
pub fn sub_zero_point(v: &mut [i64], shape: &[usize], zp: Option<&Tensor>, per_row: bool) -> Result<(), OpError> {
    let Some(zp) = zp else { return Ok(()) };
    let z = zp.to_i64_vec()?;
    if z.len() == 1 {
        v.iter_mut().for_each(|x| *x -= z[0]);
        return Ok(());
    }
    // Per-row zero point of A (axis -2, length M) or per-column of B (axis -1, length N).
    let r = shape.len();
    let (rows, cols) = match r {
        0 => (1, 1),
        1 => (1, shape[0]),
        _ => (shape[r - 2], shape[r - 1]),
    };
    let want = if per_row { rows } else { cols };
    if z.len() != want {
        bail!("zero point has {} values, expected 1 or {want}", z.len());
    }
    for (i, x) in v.iter_mut().enumerate() {
        let j = if per_row { (i / cols.max(1)) % rows.max(1) } else { i % cols.max(1) };
        *x -= z[j];
    }
    Ok(())
}

pub fn matmul_integer(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (a, b) = (req(inputs, 0)?, req(inputs, 1)?);
    for t in [a, b] {
        if !matches!(t.dtype(), DType::I8 | DType::U8) {
            bail!("MatMulInteger takes int8/uint8 inputs, got {}", t.dtype());
        }
    }
    let mut av = a.to_i64_vec()?;
    let mut bv = b.to_i64_vec()?;
    sub_zero_point(&mut av, a.shape(), crate::util::opt(inputs, 2), true)?;
    sub_zero_point(&mut bv, b.shape(), crate::util::opt(inputs, 3), false)?;
    let (out, shape) = batched_matmul(&av, a.shape(), &bv, b.shape())?;
    Ok(vec![Tensor::from_vec(shape, out)?.cast(DType::I32)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_promote_and_batches_broadcast() -> Result<(), OpError> {
        // (2,) x (2, 3) -> (3,)
        let (v, s) = batched_matmul(&[1.0, 2.0], &[2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
        assert_eq!((v, s), (vec![9.0, 12.0, 15.0], vec![3]));
        // (2, 1, 2) x (2,) -> (2, 1)
        let (v, s) = batched_matmul(&[1.0, 2.0, 3.0, 4.0], &[2, 1, 2], &[1.0, 1.0], &[2])?;
        assert_eq!((v, s), (vec![3.0, 7.0], vec![2, 1]));
        // (1, 2, 2) x (3, 2, 1): batch broadcasts to 3
        let (_, s) = batched_matmul(&[0i64; 4], &[1, 2, 2], &[0i64; 6], &[3, 2, 1])?;
        assert_eq!(s, vec![3, 2, 1]);
        assert!(batched_matmul(&[0.0; 6], &[2, 3], &[0.0; 4], &[2, 2]).is_err());
        Ok(())
    }
}
