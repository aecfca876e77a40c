//! The NHWC depthwise convolution on AVX-512 registers: channel groups of 32 (two `zmm`
//! blocks, the last masked to the channels left) outer, so the input rows a group reads stay
//! in L1; within a group, four interior output pixels at a time share each weight load, every
//! tap accumulated in registers before one store, bias and activation applied to the
//! registers (`act512`). Edge pixels go one at a time over the taps inside the image.
//!
//! `depthwise::nhwc_body` is the portable form of the same loop; compiled for AVX-512, its
//! 16-lane arrays were vectorised with peeled, blended partial vectors. Measured on one
//! thread at 56x56x64 3x3: 170 us portable, about 90 us here (about 70 with 64-byte-aligned
//! operands, see `crate::alloc`); the FMA bound is about 15 us, so the loop is still limited
//! by something a counter-less perf did not show (not memory: at 16 channels a 24x24 image,
//! all in L1, cost as much per pixel as 112x112).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::act512;
use super::activation::Activation;
use super::conv::ConvJob;
use super::depthwise::Pixel;
use super::im2col::valid_range;

/// Taps of one output row inside the image, at most this many kernel rows (else the
/// portable loop runs).
const MAX_KH: usize = 16;

/// Output rows `row0..` of an NHWC depthwise convolution into `y` (`ow * c` per row); false
/// (nothing promised about `y`) when this path does not apply, the caller then runs the
/// portable loop. Needs AVX-512 (`Isa::Avx512` effective).
pub(crate) fn nhwc(job: &ConvJob<'_>, oh: usize, ow: usize, row0: usize, y: &mut [f32]) -> bool {
    if job.spec.kernel[0] > MAX_KH || !super::isa::Isa::Avx512.is_available() {
        return false;
    }
    // SAFETY: AVX-512 (f/vl/bw/dq, with avx2 and fma) was detected just above.
    unsafe { nhwc_avx512(job, oh, ow, row0, y) }
}

#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn nhwc_avx512(job: &ConvJob<'_>, oh: usize, ow: usize, row0: usize, y: &mut [f32]) -> bool {
    let s = job.spec;
    let (h, w, c) = (s.in_h, s.in_w, s.in_channels);
    let ([kh_n, kw_n], [sh, sw], [dh, dw]) = (s.kernel, s.stride, s.dilation);
    let (pt, pl) = (s.pads[0], s.pads[1]);
    if c == 0 || ow == 0 {
        return true;
    }
    for (ri, yrow) in y.chunks_exact_mut(ow * c).enumerate() {
        let r = row0 + ri;
        let (n, oy) = (r / oh, r % oh);
        let Some(x_img) = job.x.get(n * h * w * c..(n + 1) * h * w * c) else { return false };
        let mut taps = [(0usize, 0usize); MAX_KH];
        let mut nt = 0;
        for kh in 0..kh_n {
            let ih = oy * sh + kh * dh;
            if ih >= pt && ih - pt < h {
                taps[nt] = (ih - pt, kh);
                nt += 1;
            }
        }
        let row = Pixel { x_img, wts: &job.w.depthwise, bias: job.bias, rows: &taps[..nt], w, c, kw_n, sw, dw, pl };
        let interior = |ox: usize| valid_range(ox * sw, pl, dw, w, kw_n) == (0, kw_n);
        // Channel groups of 32 outer: the three input rows a group reads (56 pixels x 32
        // channels x 3 rows = 21 KB at 56 wide) stay in L1 across the row's pixels, where all
        // channels at once spilled to L2 (an L2-bandwidth-bound 12 cycles a tap).
        for cb in (0..c).step_by(32) {
            let two = c - cb > 16;
            let mut ox = 0;
            while ox < ow {
                let quad = ox + 4 <= ow && interior(ox) && interior(ox + 3);
                let ok = match (quad, two) {
                    (true, true) => pixels::<4, 2>(&row, job.act, ox, (0, kw_n), cb, yrow),
                    (true, false) => pixels::<4, 1>(&row, job.act, ox, (0, kw_n), cb, yrow),
                    (false, true) => pixels::<1, 2>(&row, job.act, ox, valid_range(ox * sw, pl, dw, w, kw_n), cb, yrow),
                    (false, false) => pixels::<1, 1>(&row, job.act, ox, valid_range(ox * sw, pl, dw, w, kw_n), cb, yrow),
                };
                if !ok {
                    return false;
                }
                ox += if quad { 4 } else { 1 };
            }
        }
    }
    true
}

/// `P` output pixels from `ox` (kernel columns `lo..hi` inside the image for each of them),
/// `N` channel blocks from channel `cb` (the last block masked to the channels left), into
/// the output row `yrow`. False if an operand is shorter than the shape says (checked once,
/// at the farthest element any tap reads: taps and columns only grow).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
fn pixels<const P: usize, const N: usize>(
    r: &Pixel<'_>,
    act: Activation,
    ox: usize,
    (lo, hi): (usize, usize),
    cb: usize,
    yrow: &mut [f32],
) -> bool {
    let span = (r.c - cb).min(N * 16);
    let mut masks = [0 as __mmask16; N];
    for (j, m) in masks.iter_mut().enumerate() {
        let lanes = span.saturating_sub(j * 16).min(16);
        *m = ((1u32 << lanes) - 1) as u16;
    }
    let mut acc = [[_mm512_setzero_ps(); N]; P];
    if let (Some(&(last_ih, last_kh)), true) = (r.rows.last(), lo < hi) {
        // The farthest input and weight elements read, and the first column read.
        let first_col = ox * r.sw + lo * r.dw;
        let last_col = (ox + P - 1) * r.sw + (hi - 1) * r.dw;
        let x_end = (last_ih * r.w + last_col - r.pl.min(last_col)) * r.c + cb + span;
        let w_end = (last_kh * r.kw_n + hi - 1) * r.c + cb + span;
        if first_col < r.pl || last_col - r.pl >= r.w || x_end > r.x_img.len() || w_end > r.wts.len() {
            return false;
        }
        let full = span == N * 16;
        let (pstride, kstride) = (r.sw * r.c, r.dw * r.c);
        for &(ih, kh) in r.rows {
            // SAFETY (every pointer below): the element offsets grow with the tap, the column
            // and the pixel, and the last ones (`x_end`, `w_end`) were checked against the
            // slices above; lanes past `span` are masked off (and then never read).
            let mut xp = unsafe { r.x_img.as_ptr().add((ih * r.w + first_col - r.pl) * r.c + cb) };
            let mut wp = unsafe { r.wts.as_ptr().add((kh * r.kw_n + lo) * r.c + cb) };
            for _ in lo..hi {
                let mut wv = [_mm512_setzero_ps(); N];
                for j in 0..N {
                    wv[j] = unsafe { load(full, masks[j], wp.add(j * 16)) };
                }
                for (p, a) in acc.iter_mut().enumerate() {
                    for j in 0..N {
                        let xv = unsafe { load(full, masks[j], xp.add(p * pstride + j * 16)) };
                        a[j] = _mm512_fmadd_ps(xv, wv[j], a[j]);
                    }
                }
                xp = xp.wrapping_add(kstride);
                wp = wp.wrapping_add(r.c);
            }
        }
    }
    if let Some(b) = r.bias {
        let Some(b) = b.get(cb..cb + span) else { return false };
        for j in 0..N {
            // SAFETY: block j's masked lanes lie inside `b` (span elements).
            let v = unsafe { _mm512_maskz_loadu_ps(masks[j], b.as_ptr().add(j * 16)) };
            for a in acc.iter_mut() {
                a[j] = _mm512_add_ps(a[j], v);
            }
        }
    }
    let Some(out) = yrow.get_mut(ox * r.c + cb..(ox + P - 1) * r.c + cb + span) else { return false };
    for (p, a) in acc.iter().enumerate() {
        for j in 0..N {
            // By value: a reference to `acc` would keep the accumulators in memory.
            let v = act512::apply(act, a[j]);
            // SAFETY: p c + block j's masked lanes lie inside `out` ((P - 1) c + span elements).
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(p * r.c + j * 16), masks[j], v) };
        }
    }
    true
}

/// 16 floats at `p`, or the lanes of `mask` (zero elsewhere) unless `full`.
///
/// # Safety
/// `p` is valid for 16 floats if `full`, else for the lanes of `mask`.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
unsafe fn load(full: bool, mask: __mmask16, p: *const f32) -> __m512 {
    // SAFETY: as the caller promised.
    unsafe { if full { _mm512_loadu_ps(p) } else { _mm512_maskz_loadu_ps(mask, p) } }
}
