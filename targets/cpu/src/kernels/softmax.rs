//! Softmax over the last axis (rows), vectorised: max, then exp and sum in one pass, then scale.

use super::arch;
use super::error::{KernelError, check_len};
use super::math;
use super::rows::{RowParams, check_rows, for_row_blocks};

const KERNEL: &str = "softmax";

/// `out[r] = softmax(x[r])` for every row of `row_len` elements.
pub fn softmax(x: &[f32], row_len: usize, out: &mut [f32], params: &RowParams) -> Result<(), KernelError> {
    check_len(KERNEL, "output", out.len(), x.len())?;
    check_rows(KERNEL, x.len(), row_len)?;
    for_row_blocks(out, row_len, params.threads, |r0, block| {
        arch::softmax_rows_from(params.isa, &x[r0 * row_len..][..block.len()], block, row_len);
    });
    Ok(())
}

/// [`softmax`] in place.
pub fn softmax_inplace(data: &mut [f32], row_len: usize, params: &RowParams) -> Result<(), KernelError> {
    check_rows(KERNEL, data.len(), row_len)?;
    for_row_blocks(data, row_len, params.threads, |_, block| arch::softmax_rows(params.isa, block, row_len));
    Ok(())
}

/// Softmax of each row of `block` in place. A row that is all -inf (fully masked) gives NaN,
/// as `exp(x - max)` does in the definition.
#[inline(always)]
pub(crate) fn rows_body(fma: bool, block: &mut [f32], row_len: usize) {
    for row in block.chunks_exact_mut(row_len) {
        let m = math::max(row);
        let mut acc = [0.0f32; 16];
        let mut chunks = row.chunks_exact_mut(16);
        for c in &mut chunks {
            for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
                *v = math::exp_fma(fma, *v - m);
                *a += *v;
            }
        }
        let mut tail = 0.0;
        for v in chunks.into_remainder() {
            *v = math::exp_fma(fma, *v - m);
            tail += *v;
        }
        let inv = 1.0 / (acc.iter().sum::<f32>() + tail);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Softmax of each row of `x` into `out` (no copy pass).
#[inline(always)]
pub(crate) fn rows_from_body(fma: bool, x: &[f32], out: &mut [f32], row_len: usize) {
    for (src, row) in x.chunks_exact(row_len).zip(out.chunks_exact_mut(row_len)) {
        let m = math::max(src);
        let mut acc = [0.0f32; 16];
        let mut chunks = row.chunks_exact_mut(16);
        let mut src_chunks = src.chunks_exact(16);
        for (c, s) in (&mut chunks).zip(&mut src_chunks) {
            for ((a, v), x) in acc.iter_mut().zip(c.iter_mut()).zip(s) {
                *v = math::exp_fma(fma, *x - m);
                *a += *v;
            }
        }
        let mut tail = 0.0;
        for (v, x) in chunks.into_remainder().iter_mut().zip(src_chunks.remainder()) {
            *v = math::exp_fma(fma, *x - m);
            tail += *v;
        }
        let inv = 1.0 / (acc.iter().sum::<f32>() + tail);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}
