//! The direct NHWC convolution (`direct.rs`: a CNN's first layer) on AVX-512 registers: four
//! output pixels of a row at a time (one at the borders), every 16-channel block of the
//! outputs in its own `zmm` accumulator per pixel, each weight row loaded once for the four
//! pixels, each input value broadcast; bias and activation applied to the registers before the
//! one store. The portable loop's 16-lane arrays compile to the same shape only roughly.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::act512;
use super::activation::Activation;
use super::conv::ConvJob;
use super::im2col::valid_range;

/// Output rows `row0..` (index `n * oh + oy`) into `y` (`ow * cout` per row); false (nothing
/// promised about `y`) when this path does not apply: the caller runs the portable loop.
pub(crate) fn nhwc(job: &ConvJob<'_>, oh: usize, ow: usize, row0: usize, y: &mut [f32]) -> bool {
    let cout = job.spec.out_channels;
    if !cout.is_multiple_of(16) || !(16..=64).contains(&cout) || !super::isa::Isa::Avx512.is_available() {
        return false;
    }
    // SAFETY: AVX-512 (f/vl/bw/dq, with avx2 and fma) was detected just above.
    unsafe {
        match cout / 16 {
            1 => rows::<1>(job, oh, ow, row0, y),
            2 => rows::<2>(job, oh, ow, row0, y),
            3 => rows::<3>(job, oh, ow, row0, y),
            _ => rows::<4>(job, oh, ow, row0, y),
        }
    }
}

/// What the pixels of one output row read.
struct Row<'a> {
    /// The image of this row's batch element.
    x: &'a [f32],
    wts: &'a [f32],
    bias: [__m512; 4],
    act: Activation,
    /// Input row of kernel row `khs.0`; kernel rows `khs.0..khs.1` lie inside the image.
    ih0: usize,
    khs: (usize, usize),
    w: usize,
    cin: usize,
    kw_n: usize,
    sw: usize,
    dw: usize,
    dh: usize,
    pl: usize,
}

#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn rows<const NB: usize>(job: &ConvJob<'_>, oh: usize, ow: usize, row0: usize, y: &mut [f32]) -> bool {
    let s = job.spec;
    let cout = NB * 16;
    let (h, w, cin) = (s.in_h, s.in_w, s.in_channels);
    let ([kh_n, kw_n], [sh, sw], [dh, dw]) = (s.kernel, s.stride, s.dilation);
    let (pt, pl) = (s.pads[0], s.pads[1]);
    let mut bias = [_mm512_setzero_ps(); 4];
    if let Some(b) = job.bias {
        let Some(b) = b.get(..cout) else { return false };
        for (j, v) in bias.iter_mut().enumerate().take(NB) {
            // SAFETY: 16 j + 16 <= cout = b.len().
            *v = unsafe { _mm512_loadu_ps(b.as_ptr().add(j * 16)) };
        }
    }
    let inside = |ox: usize| valid_range(ox * sw, pl, dw, w, kw_n) == (0, kw_n);
    for (ri, yrow) in y.chunks_exact_mut(ow * cout).enumerate() {
        let r = row0 + ri;
        let (n, oy) = (r / oh, r % oh);
        let Some(x) = job.x.get(n * h * w * cin..(n + 1) * h * w * cin) else { return false };
        let khs = valid_range(oy * sh, pt, dh, h, kh_n);
        if khs.0 == khs.1 {
            // No kernel row inside the image: bias through the activation.
            for px in yrow.chunks_exact_mut(cout) {
                for (j, out) in px.chunks_exact_mut(16).enumerate() {
                    let v = act512::apply(job.act, bias[j]);
                    // SAFETY: `out` holds 16 floats.
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) };
                }
            }
            continue;
        }
        let row = Row { x, wts: &job.w.gemm, bias, act: job.act, ih0: oy * sh + khs.0 * dh - pt, khs, w, cin, kw_n, sw, dw, dh, pl };
        let mut ox = 0;
        while ox < ow {
            let ok = if ox + 4 <= ow && inside(ox) && inside(ox + 3) {
                let done = pixels::<4, NB>(&row, ox, (0, kw_n), yrow);
                ox += 4;
                done
            } else {
                let done = pixels::<1, NB>(&row, ox, valid_range(ox * sw, pl, dw, w, kw_n), yrow);
                ox += 1;
                done
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// `P` output pixels from `ox` (kernel columns `kws` inside the image for each), all `NB`
/// blocks, into the output row. False if an operand is shorter than the shape says (checked
/// once, at the farthest element).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
fn pixels<const P: usize, const NB: usize>(r: &Row<'_>, ox: usize, (klo_w, khi_w): (usize, usize), yrow: &mut [f32]) -> bool {
    let cout = NB * 16;
    let mut first = [_mm512_setzero_ps(); NB];
    first.copy_from_slice(&r.bias[..NB]);
    let mut acc = [first; P];
    let (klo, khi) = r.khs;
    if klo_w < khi_w {
        let first_col = ox * r.sw + klo_w * r.dw;
        let last_col = (ox + P - 1) * r.sw + (khi_w - 1) * r.dw;
        let last_ih = r.ih0 + (khi - 1 - klo) * r.dh;
        let x_end = (last_ih * r.w + last_col - r.pl.min(last_col)) * r.cin + r.cin;
        let w_end = (((khi - 1) * r.kw_n + khi_w - 1) * r.cin + r.cin) * cout;
        if first_col < r.pl || last_col - r.pl >= r.w || x_end > r.x.len() || w_end > r.wts.len() {
            return false;
        }
        let (x, wts) = (r.x.as_ptr(), r.wts.as_ptr());
        let pstride = r.sw * r.cin;
        for kh in klo..khi {
            let ih = r.ih0 + (kh - klo) * r.dh;
            for kw in klo_w..khi_w {
                // SAFETY (all reads below): offsets grow with kh, kw, ci and the pixel; the
                // farthest (`x_end`, `w_end`) were checked against the slices above.
                let xk = unsafe { x.add((ih * r.w + ox * r.sw + kw * r.dw - r.pl) * r.cin) };
                let wk = unsafe { wts.add((kh * r.kw_n + kw) * r.cin * cout) };
                for ci in 0..r.cin {
                    let mut wv = [_mm512_setzero_ps(); NB];
                    for (j, v) in wv.iter_mut().enumerate() {
                        *v = unsafe { _mm512_loadu_ps(wk.add(ci * cout + j * 16)) };
                    }
                    for (p, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(unsafe { *xk.add(p * pstride + ci) });
                        for j in 0..NB {
                            a[j] = _mm512_fmadd_ps(xv, wv[j], a[j]);
                        }
                    }
                }
            }
        }
    }
    let Some(out) = yrow.get_mut(ox * cout..(ox + P) * cout) else { return false };
    for (p, a) in acc.iter().enumerate() {
        for (j, &v) in a.iter().enumerate() {
            // By value: a reference to `acc` would keep the accumulators in memory.
            let v = act512::apply(r.act, v);
            // SAFETY: p cout + 16 j + 16 <= P cout = out.len().
            unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(p * cout + j * 16), v) };
        }
    }
    true
}
