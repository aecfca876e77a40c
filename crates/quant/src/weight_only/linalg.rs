//! The dense linear algebra GPTQ needs, on row-major `n x n` f64 matrices: Cholesky, the
//! inverse of a lower-triangular matrix, and from them the upper Cholesky factor of H^-1.

/// Lower Cholesky factor `L` (`A = L L^T`), or None when `A` is not positive definite.
pub(crate) fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let row_j = &l[j * n..j * n + j];
        let d = a[j * n + j] - row_j.iter().map(|v| v * v).sum::<f64>();
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            l[i * n + j] = (a[i * n + j] - dot) / d;
        }
    }
    Some(l)
}

/// The inverse of a lower-triangular `L` with a non-zero diagonal (lower-triangular too).
pub(crate) fn invert_lower(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    for j in 0..n {
        inv[j * n + j] = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let s: f64 = (j..i).map(|k| l[i * n + k] * inv[k * n + j]).sum();
            inv[i * n + j] = -s / l[i * n + i];
        }
    }
    inv
}

/// The upper-triangular `U` with `H^-1 = U^T U`, or None when `H` (or, by rounding, its
/// inverse) is not positive definite.
pub(crate) fn inverse_cholesky_upper(h: &[f64], n: usize) -> Option<Vec<f64>> {
    let linv = invert_lower(&cholesky(h, n)?, n);
    // H^-1 = L^-T L^-1: entry (i, j) = sum over k >= max(i, j) of linv[k][i] * linv[k][j].
    let mut hinv = vec![0.0; n * n];
    for k in 0..n {
        let row = &linv[k * n..k * n + k + 1];
        for i in 0..=k {
            let a = row[i];
            if a != 0.0 {
                for j in 0..=i {
                    hinv[i * n + j] += a * row[j];
                }
            }
        }
    }
    for i in 0..n {
        for j in 0..i {
            hinv[j * n + i] = hinv[i * n + j];
        }
    }
    let l2 = cholesky(&hinv, n)?;
    let mut u = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            u[j * n + i] = l2[i * n + j];
        }
    }
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_factor_of_the_inverse() {
        let h = [4.0, 2.0, 0.4, 2.0, 3.0, 0.5, 0.4, 0.5, 2.0];
        let u = inverse_cholesky_upper(&h, 3).unwrap_or_default();
        assert_eq!(u.len(), 9);
        // U^T U H = I.
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| (0..3).map(|m| u[m * 3 + i] * u[m * 3 + k]).sum::<f64>() * h[k * 3 + j]).sum();
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12, "{i} {j} {v}");
            }
            for j in 0..i {
                assert_eq!(u[i * 3 + j], 0.0);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
