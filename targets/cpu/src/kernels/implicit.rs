//! Convolution as one implicit GEMM (NCHW, stride 1): no column buffer.
//!
//! Per (image, group) the input is copied once into a zero-padded image `[cin/g, hp, wp]`.
//! Output pixels are computed on the padded width: output row `r` holds `wp` columns, of which
//! the first `ow` are kept. On that grid, row `(ci, kh, kw)` of im2col's column matrix is one
//! contiguous run of the padded image, starting at `ci hp wp + kh dh wp + kw dw`, so the GEMM
//! `Y[out/g, oh wp] = W[out/g, k] * B` packs its B blocks straight from the image through a
//! row table ([`RowTable`]). Bias and activation run in the GEMM's epilogue; the kept columns
//! are then copied into `y`. The im2col path writes and re-reads `k` floats per output pixel
//! (864 for a 96-channel 3x3); this one reads the image a few times from cache.

use super::activation::Bias;
use super::conv::ConvJob;
use super::error::{KernelError, invalid};
use super::gemm::GemmSpec;
use super::micro::{self, BSource};
use super::micro_pack::RowTable;

const KERNEL: &str = "conv2d implicit";

thread_local! {
    /// The padded image and the wide output of the last call on this thread, reused.
    static SCRATCH: std::cell::Cell<(Vec<f32>, Vec<f32>)> = std::cell::Cell::default();
}

/// Whether the implicit GEMM handles this convolution (stride 1 in both axes).
pub(crate) fn applies(job: &ConvJob<'_>) -> bool {
    job.spec.stride == [1, 1]
}

pub(crate) fn run(job: &ConvJob<'_>, y: &mut [f32]) -> Result<(), KernelError> {
    if !applies(job) {
        return Err(invalid(KERNEL, "needs stride 1"));
    }
    let (mut xpad, mut wide) = SCRATCH.take();
    let out = run_with(job, y, &mut xpad, &mut wide);
    SCRATCH.set((xpad, wide));
    out
}

fn run_with(job: &ConvJob<'_>, y: &mut [f32], xpad: &mut Vec<f32>, wide: &mut Vec<f32>) -> Result<(), KernelError> {
    let s = job.spec;
    let [oh, ow] = s.out_hw()?;
    let (g, cin_g, cout_g, k) = (s.groups, s.in_per_group(), s.out_per_group(), s.k());
    let ([kh_n, kw_n], [dh, dw]) = (s.kernel, s.dilation);
    let (hp, wp) = (s.in_h + s.pads[0] + s.pads[2], s.in_w + s.pads[1] + s.pads[3]);
    let plane_p = hp * wp;
    let (plane_in, plane_out) = (s.in_h * s.in_w, oh * ow);
    let n_wide = oh * wp;
    if cout_g == 0 || plane_out == 0 {
        return Ok(());
    }
    // The last kept row's discarded columns read up to (kw_n - 1) dw past the image.
    xpad.resize(cin_g * plane_p + (kw_n - 1) * dw, 0.0);
    wide.resize(cout_g * n_wide, 0.0);
    let mut offs = Vec::with_capacity(k);
    for ci in 0..cin_g {
        for kh in 0..kh_n {
            for kw in 0..kw_n {
                offs.push(ci * plane_p + kh * dh * wp + kw * dw);
            }
        }
    }
    let threads = job.params.gemm.threads.max(1);
    let spec = GemmSpec::new(cout_g, n_wide, k).act(job.act);
    for (idx, yc) in y.chunks_mut(cout_g * plane_out).enumerate() {
        let (n, gi) = (idx / g, idx % g);
        let x_img = job
            .x
            .get((n * s.in_channels + gi * cin_g) * plane_in..)
            .and_then(|x| x.get(..cin_g * plane_in))
            .ok_or_else(|| invalid(KERNEL, "input shorter than its shape"))?;
        pad(x_img, s, (hp, wp), &mut xpad[..cin_g * plane_p], threads);
        let wg = &job.w.gemm[gi * cout_g * k..][..cout_g * k];
        let bias = job.bias.map_or(Bias::None, |b| Bias::PerRow(&b[gi * cout_g..][..cout_g]));
        let b = BSource::Rows(RowTable { data: xpad, offs: &offs });
        micro::gemm(&spec, wg, b, bias, wide, &job.params.gemm)?;
        let rows: Vec<(&mut [f32], &[f32])> = yc.chunks_mut(plane_out).zip(wide.chunks(n_wide)).collect();
        crate::par::run(rows, threads, |_, (dst, src)| {
            for (d, s) in dst.chunks_exact_mut(ow).zip(src.chunks(wp)) {
                d.copy_from_slice(&s[..ow]);
            }
        });
    }
    Ok(())
}

/// Copies `x` (`[c, h, w]`) into `dst` (`[c, hp, wp]`) with zero borders.
fn pad(x: &[f32], s: &super::conv::Conv2dSpec, (hp, wp): (usize, usize), dst: &mut [f32], threads: usize) {
    let (h, w, top, left) = (s.in_h, s.in_w, s.pads[0], s.pads[1]);
    let planes: Vec<(&mut [f32], &[f32])> = dst.chunks_exact_mut(hp * wp).zip(x.chunks_exact(h * w)).collect();
    let threads = if x.len() < 1 << 15 { 1 } else { threads };
    crate::par::run(planes, threads, |_, (d, src)| {
        d[..top * wp].fill(0.0);
        d[(top + h) * wp..].fill(0.0);
        for (drow, srow) in d[top * wp..(top + h) * wp].chunks_exact_mut(wp).zip(src.chunks_exact(w)) {
            drow[..left].fill(0.0);
            drow[left..left + w].copy_from_slice(srow);
            drow[left + w..].fill(0.0);
        }
    });
}
