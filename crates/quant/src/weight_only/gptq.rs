//! GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
//! Pre-trained Transformers"): quantize a `[K, N]` weight one row of K at a time, pushing each
//! row's rounding error onto the rows not yet quantized through the inverse Hessian, so the
//! layer's output `X W` moves as little as the calibration activations X can tell.
//!
//! No act-order; the groups are the static ones of the blocked DequantizeLinear form: a group's
//! steps are computed when its first row is reached, from its rows as already compensated.
//! Blocks of rows (128, rounded to whole groups) are updated lazily: rows inside the block at
//! once, the rest once per block.

use super::grid::Grid;
use super::linalg::inverse_cholesky_upper;
use super::matrix::QMatrix;

/// Rows per lazy-update block (before rounding to whole groups).
const BLOCK: usize = 128;

/// GPTQ over `w [K, N]` with `h [K, K]` (2/n X^T X, symmetric) and dampening `damp` (a
/// fraction of the mean diagonal). None when H is not positive definite after dampening.
pub(crate) fn gptq(w: &[f32], h: &[f64], k: usize, n: usize, group: usize, grid: Grid, damp: f64) -> Option<QMatrix> {
    let mut m = QMatrix::new(k, n, group, grid);
    let mut h = h.to_vec();
    let mut w: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    // Dead inputs (always 0 in the calibration data): H_kk = 1 and the row quantized as 0.
    for r in 0..k {
        if h[r * k + r] == 0.0 {
            h[r * k + r] = 1.0;
            w[r * n..(r + 1) * n].iter_mut().for_each(|v| *v = 0.0);
        }
    }
    let mean_diag = (0..k).map(|r| h[r * k + r]).sum::<f64>() / k.max(1) as f64;
    for r in 0..k {
        h[r * k + r] += damp * mean_diag;
    }
    let u = inverse_cholesky_upper(&h, k)?;
    let block = if m.group >= BLOCK { m.group } else { (BLOCK / m.group) * m.group };
    let mut err = vec![0.0f64; block * n];
    for b0 in (0..k).step_by(block) {
        let b1 = (b0 + block).min(k);
        for r in b0..b1 {
            if r % m.group == 0 {
                m.set_group_steps(r, |i, c| w[i * n + c] as f32);
            }
            let d = m.set_row(r, |c| w[r * n + c] as f32);
            let urr = u[r * k + r];
            let e = &mut err[(r - b0) * n..(r - b0 + 1) * n];
            for c in 0..n {
                e[c] = (w[r * n + c] - f64::from(d[c])) / urr;
            }
            for j in r + 1..b1 {
                let f = u[r * k + j];
                if f != 0.0 {
                    w[j * n..(j + 1) * n].iter_mut().zip(e.iter()).for_each(|(x, &ec)| *x -= f * ec);
                }
            }
        }
        for j in b1..k {
            let row = &mut w[j * n..(j + 1) * n];
            for r in b0..b1 {
                let f = u[r * k + j];
                if f != 0.0 {
                    row.iter_mut().zip(&err[(r - b0) * n..(r - b0 + 1) * n]).for_each(|(x, &ec)| *x -= f * ec);
                }
            }
        }
    }
    Some(m)
}
