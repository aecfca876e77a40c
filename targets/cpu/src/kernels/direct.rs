//! Direct NHWC convolution for a short reduction (`in * kh * kw` <= [`MAX_K`], one group,
//! output channels a multiple of 16 up to 64): the first layer of a CNN (3 input channels),
//! where im2col writes and re-reads a column buffer larger than the input for little
//! arithmetic. Four output pixels of a row at a time, each block of 16 output channels with
//! its own accumulator per pixel (independent multiply-adds, one weight row load shared by
//! the four), every (tap, input channel) product accumulated in registers; border pixels
//! one at a time. Bias and activation are applied per output row.

use super::activation::{Bias, bias_act_body};
use super::arch;
use super::conv::{ConvJob, ConvLayout};
use super::im2col::valid_range;
use super::math::fmadd;

/// The longest reduction the direct loop takes.
pub(crate) const MAX_K: usize = 64;

/// Output channels per register block.
const BLOCK: usize = 16;

/// Whether the direct loop handles this convolution.
pub(crate) fn applies_to(spec: &super::conv::Conv2dSpec, layout: ConvLayout) -> bool {
    let c = spec.out_channels;
    layout == ConvLayout::Nhwc && spec.groups == 1 && spec.k() <= MAX_K && c.is_multiple_of(BLOCK) && (BLOCK..=4 * BLOCK).contains(&c)
}

pub(crate) fn run(job: &ConvJob<'_>, y: &mut [f32]) {
    let Ok([oh, ow]) = job.spec.out_hw() else { return };
    let (threads, isa) = (job.params.gemm.threads.max(1), job.params.gemm.isa);
    let row_len = ow * job.spec.out_channels;
    let body = |first: usize, chunk: &mut [f32]| {
        #[cfg(target_arch = "x86_64")]
        if isa.effective() == super::isa::Isa::Avx512 && super::arch_direct::nhwc(job, oh, ow, first, chunk) {
            return;
        }
        arch::direct_nhwc(isa, job, oh, ow, first, chunk)
    };
    // Small outputs on the calling thread alone (below 16K values a hand-off costs more).
    if y.len() < 1 << 14 {
        body(0, y);
    } else {
        super::rows::for_row_blocks(y, row_len, threads, body);
    }
}

/// Output rows `row0..` (index `n * oh + oy`) into `y`.
#[inline(always)]
pub(crate) fn nhwc_body(fma: bool, job: &ConvJob<'_>, oh: usize, ow: usize, row0: usize, y: &mut [f32]) {
    let s = job.spec;
    let cout = s.out_channels;
    let (h, w, cin) = (s.in_h, s.in_w, s.in_channels);
    let ([kh_n, kw_n], [sh, sw], [dh, dw]) = (s.kernel, s.stride, s.dilation);
    let (pt, pl) = (s.pads[0], s.pads[1]);
    let bias = job.bias.map_or(Bias::None, Bias::PerCol);
    for (ri, yrow) in y.chunks_exact_mut(ow * cout).enumerate() {
        let r = row0 + ri;
        let (n, oy) = (r / oh, r % oh);
        let (klo, khi) = valid_range(oy * sh, pt, dh, h, kh_n);
        let at = Row {
            x: &job.x[n * h * w * cin..][..h * w * cin],
            wts: &job.w.gemm,
            // Input rows of the valid kernel rows: kh in klo..khi reads row ih0 + kh dh.
            ih0: oy * sh + klo * dh - pt,
            khs: (klo, khi),
            dims: (w, cin, cout, kw_n, sw, dw, pl, dh),
        };
        let interior = |ox: usize| valid_range(ox * sw, pl, dw, w, kw_n) == (0, kw_n);
        let mut ox = 0;
        while ox < ow {
            if ox + 4 <= ow && interior(ox) && interior(ox + 3) {
                pixels::<4>(fma, &at, ox, (0, kw_n), &mut yrow[ox * cout..(ox + 4) * cout]);
                ox += 4;
            } else {
                let kws = valid_range(ox * sw, pl, dw, w, kw_n);
                pixels::<1>(fma, &at, ox, kws, &mut yrow[ox * cout..(ox + 1) * cout]);
                ox += 1;
            }
        }
        bias_act_body(yrow, cout, cout, 0, bias, job.act);
    }
}

/// What the pixels of one output row read.
struct Row<'a> {
    x: &'a [f32],
    wts: &'a [f32],
    ih0: usize,
    khs: (usize, usize),
    /// (w, cin, cout, kw_n, sw, dw, pl, dh).
    dims: (usize, usize, usize, usize, usize, usize, usize, usize),
}

/// `P` consecutive output pixels from `ox` (kernel columns `kws` valid for all of them) into
/// `out` (`P x cout`), without bias.
#[inline(always)]
fn pixels<const P: usize>(fma: bool, r: &Row<'_>, ox: usize, (klo_w, khi_w): (usize, usize), out: &mut [f32]) {
    let (w, cin, cout, kw_n, sw, dw, pl, dh) = r.dims;
    let (klo, khi) = r.khs;
    for cb in (0..cout).step_by(BLOCK) {
        let mut acc = [[0.0f32; BLOCK]; P];
        for kh in klo..khi {
            let ih = r.ih0 + (kh - klo) * dh;
            for kw in klo_w..khi_w {
                let wrows = &r.wts[((kh * kw_n + kw) * cin) * cout..][..cin * cout];
                for ci in 0..cin {
                    let wb = &wrows[ci * cout + cb..][..BLOCK];
                    for (p, a) in acc.iter_mut().enumerate() {
                        let xv = r.x[(ih * w + (ox + p) * sw + kw * dw - pl) * cin + ci];
                        for l in 0..BLOCK {
                            a[l] = fmadd(fma, xv, wb[l], a[l]);
                        }
                    }
                }
            }
        }
        for (p, a) in acc.iter().enumerate() {
            out[p * cout + cb..][..BLOCK].copy_from_slice(a);
        }
    }
}
