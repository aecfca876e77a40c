//! Softmax over the last axis (rows), vectorised: max, exp and sum, scale.

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
        block.copy_from_slice(&x[r0 * row_len..][..block.len()]);
        arch::softmax_rows(params.isa, block, row_len);
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
pub(crate) fn rows_body(_fma: bool, block: &mut [f32], row_len: usize) {
    for row in block.chunks_exact_mut(row_len) {
        let m = math::max(row);
        row.iter_mut().for_each(|v| *v = math::exp(*v - m));
        let inv = 1.0 / math::sum(row);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}
