//! Direct depthwise convolution (groups == in channels == out channels), bias and activation
//! fused. NCHW vectorises along output rows (contiguous for stride 1); NHWC along channels
//! (contiguous for any stride).

use super::arch;
use super::conv::{ConvJob, ConvLayout};
use super::im2col::{phase_split, valid_range};
use super::math::fmadd;

pub(crate) fn run(job: &ConvJob<'_>, y: &mut [f32]) {
    let Ok([oh, ow]) = job.spec.out_hw() else { return };
    let threads = job.params.gemm.threads.max(1);
    let isa = job.params.gemm.isa;
    let c = job.spec.out_channels;
    // Units of work: output planes (NCHW) or output rows (NHWC).
    let unit_len = match job.w.layout {
        ConvLayout::Nchw => oh * ow,
        ConvLayout::Nhwc => ow * c,
    };
    let body = |first: usize, chunk: &mut [f32]| match job.w.layout {
        ConvLayout::Nchw => arch::depthwise_nchw(isa, job, oh, ow, first, chunk),
        ConvLayout::Nhwc => {
            #[cfg(target_arch = "x86_64")]
            if isa.effective() == super::isa::Isa::Avx512 && super::arch_dw::nhwc(job, oh, ow, first, chunk) {
                return;
            }
            arch::depthwise_nhwc(isa, job, oh, ow, first, chunk)
        }
    };
    // Small outputs on the calling thread alone (below 16K values a hand-off costs more).
    if y.len() < 1 << 14 {
        body(0, y);
    } else {
        super::rows::for_row_blocks(y, unit_len, threads, body);
    }
}

/// Output planes `plane0..` (index `n * c + ch`) of an NCHW depthwise convolution.
#[inline(always)]
pub(crate) fn nchw_body(fma: bool, job: &ConvJob<'_>, oh: usize, ow: usize, plane0: usize, y: &mut [f32]) {
    let s = job.spec;
    let (h, w, c) = (s.in_h, s.in_w, s.in_channels);
    let ([kh_n, kw_n], [sh, sw], [dh, dw]) = (s.kernel, s.stride, s.dilation);
    let (pt, pl) = (s.pads[0], s.pads[1]);
    let taps = kh_n * kw_n;
    // For stride > 1, each input row is split once into `sw` phases (elements i*sw + ph), so
    // every tap reads a contiguous run instead of a strided gather.
    let wp = w.div_ceil(sw);
    let mut phases = if sw > 1 { vec![0.0f32; h * sw * wp] } else { Vec::new() };
    for (pi, yp) in y.chunks_exact_mut(oh * ow).enumerate() {
        let idx = plane0 + pi;
        let ch = idx % c;
        let xp = &job.x[idx * h * w..][..h * w];
        let wk = &job.w.depthwise[ch * taps..][..taps];
        if sw > 1 {
            phase_split(xp, w, sw, &mut phases);
        }
        yp.fill(job.bias.map_or(0.0, |b| b[ch]));
        for (oy, yrow) in yp.chunks_exact_mut(ow).enumerate() {
            for kh in 0..kh_n {
                let ih = oy * sh + kh * dh;
                if ih < pt || ih - pt >= h {
                    continue;
                }
                for kw in 0..kw_n {
                    let wv = wk[kh * kw_n + kw];
                    let (lo, hi) = valid_range(kw * dw, pl, sw, w, ow);
                    if lo == hi {
                        continue;
                    }
                    let start = lo * sw + kw * dw - pl;
                    let src = if sw == 1 {
                        &xp[(ih - pt) * w + start..][..hi - lo]
                    } else {
                        let row = (ih - pt) * sw + start % sw;
                        &phases[row * wp + start / sw..][..hi - lo]
                    };
                    for (o, x) in yrow[lo..hi].iter_mut().zip(src) {
                        *o = fmadd(fma, *x, wv, *o);
                    }
                }
            }
        }
        job.act.apply_slice(yp);
    }
}

/// Channels per register block of the NHWC loop (one AVX-512 vector, two AVX2 ones).
const BLOCK: usize = 16;

/// Output rows `row0..` (index `n * oh + oy`) of an NHWC depthwise convolution. Per output
/// pixel, blocks of 16 channels (up to four at once, independent accumulators) accumulate
/// every tap in registers before one store; the last `c % 16` channels take a plain loop;
/// with exactly 16 channels, four interior pixels go at once.
#[inline(always)]
pub(crate) fn nhwc_body(fma: bool, job: &ConvJob<'_>, oh: usize, ow: usize, row0: usize, y: &mut [f32]) {
    let s = job.spec;
    let (h, w, c) = (s.in_h, s.in_w, s.in_channels);
    let ([kh_n, kw_n], [sh, sw], [dh, dw]) = (s.kernel, s.stride, s.dilation);
    let (pt, pl) = (s.pads[0], s.pads[1]);
    let wts = &job.w.depthwise[..];
    for (ri, yrow) in y.chunks_exact_mut(ow * c).enumerate() {
        let r = row0 + ri;
        let (n, oy) = (r / oh, r % oh);
        let x_img = &job.x[n * h * w * c..][..h * w * c];
        // Taps of this row inside the image: (input row, kh).
        let rows: Vec<(usize, usize)> = (0..kh_n)
            .filter_map(|kh| {
                let ih = oy * sh + kh * dh;
                (ih >= pt && ih - pt < h).then(|| (ih - pt, kh))
            })
            .collect();
        let px = Pixel { x_img, wts, rows: &rows, w, c, kw_n, sw, dw, pl, bias: job.bias };
        // Exactly one block (16 channels): four interior pixels at once, each its own
        // accumulator, sharing the weight loads.
        let interior = |ox: usize| valid_range(ox * sw, pl, dw, w, kw_n) == (0, kw_n);
        let mut ox = 0;
        while ox < ow {
            if c == BLOCK && ox + 4 <= ow && interior(ox) && interior(ox + 3) {
                let quad_px = &mut yrow[ox * c..(ox + 4) * c];
                quad(fma, &px, ox * sw, quad_px);
                ox += 4;
                continue;
            }
            pixel(fma, &px, ox, &mut yrow[ox * c..(ox + 1) * c]);
            ox += 1;
        }
        job.act.apply_slice(yrow);
    }
}

/// `N` blocks of 16 channels from channel `cb` of NHWC output pixel `ox` (kernel columns
/// `lo..hi` inside the image) into `out`.
#[inline(always)]
fn blocks<const N: usize>(fma: bool, p: &Pixel<'_>, ox: usize, (lo, hi): (usize, usize), cb: usize, out: &mut [f32]) {
    let Pixel { x_img, wts, rows, w, c, kw_n, sw, dw, pl, bias } = *p;
    let mut acc = [[0.0f32; BLOCK]; N];
    if let Some(b) = bias {
        for (j, a) in acc.iter_mut().enumerate() {
            a.copy_from_slice(&b[cb + j * BLOCK..][..BLOCK]);
        }
    }
    for &(ih, kh) in rows {
        for kw in lo..hi {
            let xb = &x_img[(ih * w + ox * sw + kw * dw - pl) * c + cb..][..N * BLOCK];
            let wb = &wts[(kh * kw_n + kw) * c + cb..][..N * BLOCK];
            for (j, a) in acc.iter_mut().enumerate() {
                for l in 0..BLOCK {
                    a[l] = fmadd(fma, xb[j * BLOCK + l], wb[j * BLOCK + l], a[l]);
                }
            }
        }
    }
    for (j, a) in acc.iter().enumerate() {
        out[j * BLOCK..][..BLOCK].copy_from_slice(a);
    }
}

/// Four NHWC output pixels of 16 channels, `x0 / sw ..`, all of whose taps lie inside the
/// image columns, into `out` (`4 x 16`).
#[inline(always)]
fn quad(fma: bool, p: &Pixel<'_>, x0: usize, out: &mut [f32]) {
    let Pixel { x_img, wts, rows, w, c, kw_n, sw, dw, pl, bias } = *p;
    let mut acc = [[0.0f32; BLOCK]; 4];
    if let Some(b) = bias {
        for a in acc.iter_mut() {
            a.copy_from_slice(&b[..BLOCK]);
        }
    }
    for &(ih, kh) in rows {
        for kw in 0..kw_n {
            let wb = &wts[(kh * kw_n + kw) * c..][..BLOCK];
            for (p, a) in acc.iter_mut().enumerate() {
                let xb = &x_img[(ih * w + x0 + p * sw + kw * dw - pl) * c..][..BLOCK];
                for l in 0..BLOCK {
                    a[l] = fmadd(fma, xb[l], wb[l], a[l]);
                }
            }
        }
    }
    for (p, a) in acc.iter().enumerate() {
        out[p * c..][..BLOCK].copy_from_slice(a);
    }
}

/// What every pixel of one NHWC output row reads (also `arch_dw`'s AVX-512 loop).
pub(crate) struct Pixel<'a> {
    pub(crate) x_img: &'a [f32],
    pub(crate) wts: &'a [f32],
    /// Taps of the row inside the image: (input row, kh).
    pub(crate) rows: &'a [(usize, usize)],
    pub(crate) w: usize,
    pub(crate) c: usize,
    pub(crate) kw_n: usize,
    pub(crate) sw: usize,
    pub(crate) dw: usize,
    pub(crate) pl: usize,
    pub(crate) bias: Option<&'a [f32]>,
}

/// One NHWC output pixel `ox` into `ypx` (`c` values). A function, not a closure: a closure
/// would not inherit the caller's target features.
#[inline(always)]
fn pixel(fma: bool, p: &Pixel<'_>, ox: usize, ypx: &mut [f32]) {
    let Pixel { x_img, wts, w, c, kw_n, sw, dw, pl, .. } = *p;
    let full = c / BLOCK * BLOCK;
    let cols = valid_range(ox * sw, pl, dw, w, kw_n);
    // Up to four blocks at a time: independent accumulators, so the multiply-adds of one
    // tap do not wait on each other.
    let mut cb = 0;
    while cb < full {
        let n = ((full - cb) / BLOCK).min(4);
        let px = &mut ypx[cb..cb + n * BLOCK];
        match n {
            4 => blocks::<4>(fma, p, ox, cols, cb, px),
            3 => blocks::<3>(fma, p, ox, cols, cb, px),
            2 => blocks::<2>(fma, p, ox, cols, cb, px),
            _ => blocks::<1>(fma, p, ox, cols, cb, px),
        }
        cb += n * BLOCK;
    }
    if full == c {
        return;
    }
    let tail = &mut ypx[full..];
    match p.bias {
        Some(b) => tail.copy_from_slice(&b[full..]),
        None => tail.fill(0.0),
    }
    for &(ih, kh) in p.rows {
        for kw in cols.0..cols.1 {
            let xpx = &x_img[(ih * w + ox * sw + kw * dw - pl) * c + full..][..c - full];
            let wt = &wts[(kh * kw_n + kw) * c + full..][..c - full];
            for ((o, x), wv) in tail.iter_mut().zip(xpx).zip(wt) {
                *o = fmadd(fma, *x, *wv, *o);
            }
        }
    }
}
