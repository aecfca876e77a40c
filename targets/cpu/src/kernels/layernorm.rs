//! Layer normalisation over the last axis (rows): `(x - mean) / sqrt(var + eps) * gamma + beta`.

use super::arch;
use super::error::{KernelError, check_len};
use super::math;
use super::rows::{RowParams, check_rows, for_row_blocks};

const KERNEL: &str = "layer_norm";

/// Normalises every row of `row_len` elements of `x` into `out`; `gamma` and `beta` (length
/// `row_len`) are optional (1 and 0).
pub fn layer_norm(
    x: &[f32],
    row_len: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
    params: &RowParams,
) -> Result<(), KernelError> {
    check_len(KERNEL, "output", out.len(), x.len())?;
    check_rows(KERNEL, x.len(), row_len)?;
    if let Some(g) = gamma {
        check_len(KERNEL, "gamma", g.len(), row_len)?;
    }
    if let Some(b) = beta {
        check_len(KERNEL, "beta", b.len(), row_len)?;
    }
    let norm = Norm { gamma, beta, eps, row_len };
    for_row_blocks(out, row_len, params.threads, |r0, block| {
        block.copy_from_slice(&x[r0 * row_len..][..block.len()]);
        arch::layer_norm_rows(params.isa, &norm, block);
    });
    Ok(())
}

pub(crate) struct Norm<'a> {
    gamma: Option<&'a [f32]>,
    beta: Option<&'a [f32]>,
    eps: f32,
    row_len: usize,
}

/// Two passes per row (mean, then variance of the centred values: no cancellation).
#[inline(always)]
pub(crate) fn rows_body(fma: bool, norm: &Norm<'_>, block: &mut [f32]) {
    let n = norm.row_len as f32;
    for row in block.chunks_exact_mut(norm.row_len) {
        let mean = math::sum(row) / n;
        row.iter_mut().for_each(|v| *v -= mean);
        let mut acc = [0.0f32; 16];
        let chunks = row.chunks_exact(16);
        let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
        for c in chunks {
            for (a, v) in acc.iter_mut().zip(c) {
                *a = math::fmadd(fma, *v, *v, *a);
            }
        }
        let var = (acc.iter().sum::<f32>() + tail) / n;
        let inv = 1.0 / (var + norm.eps).sqrt();
        match (norm.gamma, norm.beta) {
            (Some(g), Some(b)) => {
                for ((v, g), b) in row.iter_mut().zip(g).zip(b) {
                    *v = math::fmadd(fma, *v * inv, *g, *b);
                }
            }
            (Some(g), None) => row.iter_mut().zip(g).for_each(|(v, g)| *v *= inv * g),
            (None, Some(b)) => row.iter_mut().zip(b).for_each(|(v, b)| *v = math::fmadd(fma, *v, inv, *b)),
            (None, None) => row.iter_mut().for_each(|v| *v *= inv),
        }
    }
}
