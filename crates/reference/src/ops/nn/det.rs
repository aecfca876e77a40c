//! Det: determinants of the trailing square matrices, by LU decomposition with partial pivoting.

use super::common::{floats, from_f64};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Determinant of an `n x n` row-major matrix (consumed as scratch).
fn det(mut a: Vec<f64>, n: usize) -> f64 {
    let mut d = 1.0;
    for col in 0..n {
        let Some(p) = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs())) else { return d };
        if a[p * n + col] == 0.0 {
            return 0.0;
        }
        if p != col {
            for k in 0..n {
                a.swap(p * n + k, col * n + k);
            }
            d = -d;
        }
        let piv = a[col * n + col];
        d *= piv;
        for r in col + 1..n {
            let f = a[r * n + col] / piv;
            for k in col..n {
                a[r * n + k] -= f * a[col * n + k];
            }
        }
    }
    d
}

pub fn det_op(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let r = x.rank();
    if r < 2 || x.shape()[r - 1] != x.shape()[r - 2] {
        bail!("Det needs square matrices in the last two axes, got shape {:?}", x.shape());
    }
    let n = x.shape()[r - 1];
    let v = floats(x, "X")?;
    let out: Vec<f64> = if n == 0 {
        vec![1.0; x.shape()[..r - 2].iter().product()]
    } else {
        v.chunks(n * n).map(|m| det(m.to_vec(), n)).collect()
    };
    Ok(vec![from_f64(x.dtype(), x.shape()[..r - 2].to_vec(), &out)?])
}

#[cfg(test)]
mod tests {
    #[test]
    fn det_pivots_and_signs() {
        assert_eq!(super::det(vec![0.0, 1.0, 1.0, 0.0], 2), -1.0);
        let d = super::det(vec![2.0, -3.0, 1.0, 2.0, 0.0, -1.0, 1.0, 4.0, 5.0], 3);
        assert!((d - 49.0).abs() < 1e-12);
        assert_eq!(super::det(vec![1.0, 2.0, 2.0, 4.0], 2), 0.0);
    }
}
