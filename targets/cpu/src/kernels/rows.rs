//! Shared driver of the row-wise kernels (softmax, layer norm): rows split over threads.

use super::error::{KernelError, invalid};
use super::isa::Isa;

/// Tunable choices of a row-wise kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowParams {
    pub threads: usize,
    pub isa: Isa,
}

impl Default for RowParams {
    fn default() -> Self {
        RowParams { threads: 1, isa: Isa::best() }
    }
}

/// Candidates for `len` elements; the first is the default.
pub fn row_candidates(len: usize, max_threads: usize) -> Vec<RowParams> {
    let threads = if len < 1 << 15 { 1 } else { max_threads.max(1) };
    let mut out = Vec::new();
    for isa in Isa::available() {
        for t in [threads, 1, max_threads.max(1)] {
            let p = RowParams { threads: t, isa };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

pub(crate) fn check_rows(kernel: &'static str, len: usize, row_len: usize) -> Result<(), KernelError> {
    if len > 0 && (row_len == 0 || !len.is_multiple_of(row_len)) {
        return Err(invalid(kernel, format!("{len} elements are not rows of {row_len}")));
    }
    Ok(())
}

/// Calls `f(first_row, block)` over blocks of whole rows, on `threads` threads.
pub(crate) fn for_row_blocks(data: &mut [f32], row_len: usize, threads: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if data.is_empty() {
        return;
    }
    let rows = data.len() / row_len;
    if threads <= 1 || rows < 2 || data.len() < 1 << 13 {
        f(0, data);
        return;
    }
    let per = rows.div_ceil(threads * 4).max(1);
    crate::par::run(data.chunks_mut(per * row_len).collect(), threads, |i, block| f(i * per, block));
}
