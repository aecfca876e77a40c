//! Softmax of score rows on AVX-512 registers, an additive mask row added in the same pass
//! (attention's scores: the mask add was a pass of its own, at the crate's baseline codegen).
//! exp is `act512::exp`; the three passes per row (mask + max, exp + sum, scale) keep the row
//! in L1.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::act512;

/// An additive mask: row `r` of the block adds `data[offset + r * row_stride..][..row_len]`.
#[derive(Clone, Copy)]
pub(crate) struct MaskRows<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub row_stride: usize,
}

/// Softmax of every `row_len` row of `block` (after adding `mask`'s row); false, with
/// nothing changed, without AVX-512 or when the mask is shorter than the rows need.
pub(crate) fn rows(block: &mut [f32], row_len: usize, mask: Option<MaskRows<'_>>) -> bool {
    if row_len == 0 || !super::isa::Isa::Avx512.is_available() {
        return false;
    }
    if let Some(m) = mask {
        let rows = block.len() / row_len;
        let need = rows.checked_sub(1).map(|last| m.offset + last * m.row_stride + row_len);
        if need.is_none_or(|n| n > m.data.len()) {
            return false;
        }
    }
    // SAFETY: AVX-512 (f/vl/bw/dq, with avx2 and fma) was detected just above.
    unsafe { rows_avx512(block, row_len, mask) };
    true
}

#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn rows_avx512(block: &mut [f32], row_len: usize, mask: Option<MaskRows<'_>>) {
    let full = row_len / 16;
    let tail = row_len % 16;
    let tail_mask: __mmask16 = ((1u32 << tail) - 1) as u16;
    for (r, row) in block.chunks_exact_mut(row_len).enumerate() {
        let p = row.as_mut_ptr();
        // The caller checked the mask holds every row's `row_len` elements.
        let m = mask.map(|m| m.data[m.offset + r * m.row_stride..][..row_len].as_ptr());
        // SAFETY (all loads and stores below): chunk i covers elements 16 i .. 16 i + 16 <=
        // row_len of `row` (and of the mask row), the tail only its `tail` lanes (masked).
        unsafe {
            let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
            let mut nan = _mm512_setzero_ps();
            for i in 0..=full {
                let lanes = if i < full { 0xffff } else { tail_mask };
                if lanes == 0 {
                    break;
                }
                let mut x = _mm512_maskz_loadu_ps(lanes, p.add(i * 16));
                if let Some(m) = m {
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(lanes, m.add(i * 16)));
                    _mm512_mask_storeu_ps(p.add(i * 16), lanes, x);
                }
                mx = _mm512_mask_max_ps(mx, lanes, mx, x);
                // A NaN anywhere makes the row NaN (as the scalar path's max does).
                nan = _mm512_mask_add_ps(nan, _mm512_mask_cmp_ps_mask::<_CMP_UNORD_Q>(lanes, x, x), nan, x);
            }
            let mut max = _mm512_reduce_max_ps(mx);
            if _mm512_reduce_add_ps(nan).is_nan() {
                max = f32::NAN;
            }
            let maxv = _mm512_set1_ps(max);
            let mut sum = _mm512_setzero_ps();
            for i in 0..=full {
                let lanes = if i < full { 0xffff } else { tail_mask };
                if lanes == 0 {
                    break;
                }
                let x = _mm512_maskz_loadu_ps(lanes, p.add(i * 16));
                let e = act512::exp(_mm512_sub_ps(x, maxv));
                _mm512_mask_storeu_ps(p.add(i * 16), lanes, e);
                sum = _mm512_mask_add_ps(sum, lanes, sum, e);
            }
            let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
            for i in 0..=full {
                let lanes = if i < full { 0xffff } else { tail_mask };
                if lanes == 0 {
                    break;
                }
                let e = _mm512_maskz_loadu_ps(lanes, p.add(i * 16));
                _mm512_mask_storeu_ps(p.add(i * 16), lanes, _mm512_mul_ps(e, inv));
            }
        }
    }
}
