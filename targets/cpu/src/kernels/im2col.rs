//! Convolution as GEMM: pointwise (no column buffer) and im2col over output-row tiles.
//!
//! NCHW: per (image, group), `Y[out/g, pixels] = W[out/g, k] * col[k, pixels]`, bias per row.
//! NHWC: per (image, row tile, group), `Y[pixels, out/g] = col[pixels, k] * W[k, out/g]`
//! written with row stride `out` channels, bias per column. Bias and activation run in the
//! GEMM epilogue, right after each tile is computed.

use super::activation::Bias;
use super::conv::{ConvJob, ConvLayout};
use super::error::KernelError;
use super::gemm::{GemmParams, GemmSpec, sgemm};
use super::pack::sgemm_packed;

/// Output positions `o` in `0..out_len` whose input index `o * stride + off - pad` lies in
/// `0..len`, as a range `lo..hi` (empty when none).
#[inline(always)]
pub(crate) fn valid_range(off: usize, pad: usize, stride: usize, len: usize, out_len: usize) -> (usize, usize) {
    let lo = if pad > off { (pad - off).div_ceil(stride) } else { 0 }.min(out_len);
    let hi = if len + pad > off { ((len - 1 + pad - off) / stride + 1).min(out_len) } else { 0 };
    (lo, hi.max(lo))
}

/// Splits each row of `w` elements of `src` into `s` phases (elements `i * s + ph`), each
/// padded to `w.div_ceil(s)`: row `r`, phase `ph` starts at `(r * s + ph) * w.div_ceil(s)` of
/// `dst`. A strided read `row[start + o * s]` becomes the contiguous run starting at
/// `start / s` of phase `start % s`.
pub(crate) fn phase_split(src: &[f32], w: usize, s: usize, dst: &mut [f32]) {
    let wp = w.div_ceil(s);
    for (row, out) in src.chunks_exact(w).zip(dst.chunks_exact_mut(s * wp)) {
        if s == 2 {
            let (even, odd) = out.split_at_mut(wp);
            for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
                *e = pair[0];
                *o = pair[1];
            }
            if w % 2 == 1 {
                even[wp - 1] = row[w - 1];
            }
        } else {
            for (ph, dst) in out.chunks_exact_mut(wp).enumerate() {
                for (d, v) in dst.iter_mut().zip(row.iter().skip(ph).step_by(s)) {
                    *d = *v;
                }
            }
        }
    }
}

/// Runs `f` over items, in parallel (one thread per item, GEMMs single-threaded) when there
/// are at least as many items as threads, else in order with threaded GEMMs.
fn for_items<T: Send>(
    items: Vec<T>,
    gemm: &GemmParams,
    f: impl Fn(T, &GemmParams) -> Result<(), KernelError> + Sync + Send,
) -> Result<(), KernelError> {
    let threads = gemm.threads;
    if threads > 1 && items.len() >= threads {
        let one = gemm.threads(1);
        crate::par::try_run(items, threads, |_, it| f(it, &one))
    } else {
        items.into_iter().try_for_each(|it| f(it, gemm))
    }
}

pub(crate) fn run(job: &ConvJob<'_>, y: &mut [f32]) -> Result<(), KernelError> {
    match job.w.layout {
        ConvLayout::Nchw => nchw(job, y, false),
        ConvLayout::Nhwc => nhwc(job, y),
    }
}

pub(crate) fn pointwise(job: &ConvJob<'_>, y: &mut [f32]) -> Result<(), KernelError> {
    match job.w.layout {
        ConvLayout::Nchw => nchw(job, y, true),
        ConvLayout::Nhwc => nhwc_pointwise(job, y),
    }
}

fn nchw(job: &ConvJob<'_>, y: &mut [f32], pointwise: bool) -> Result<(), KernelError> {
    let s = job.spec;
    let [oh, ow] = s.out_hw()?;
    let (g, cin_g, cout_g, k) = (s.groups, s.in_per_group(), s.out_per_group(), s.k());
    let plane_in = s.in_h * s.in_w;
    let plane_out = oh * ow;
    let tile = if pointwise || job.params.tile_rows == 0 { oh } else { job.params.tile_rows.min(oh) };
    let items_n = s.batch * g;
    // Fewer (image, group) items than threads but several row tiles: the tiles go to the
    // threads instead (each its own im2col and single-threaded GEMM), then are copied in.
    if !pointwise && job.params.gemm.threads > 1 && items_n < job.params.gemm.threads && oh > tile {
        return nchw_tiles(job, y, tile);
    }
    let items: Vec<(usize, &mut [f32])> = y.chunks_mut(cout_g * plane_out).enumerate().collect();
    for_items(items, &job.params.gemm, |(idx, yc), gp| {
        let (n, gi) = (idx / g, idx % g);
        let x_img = &job.x[(n * s.in_channels + gi * cin_g) * plane_in..][..cin_g * plane_in];
        let wg = &job.w.gemm[gi * cout_g * k..][..cout_g * k];
        let bias = job.bias.map_or(Bias::None, |b| Bias::PerRow(&b[gi * cout_g..][..cout_g]));
        if pointwise {
            let spec = GemmSpec::new(cout_g, plane_out, k).act(job.act);
            return sgemm(&spec, wg, x_img, bias, yc, gp);
        }
        let mut col = vec![0.0f32; k * tile * ow];
        let sw = s.stride[1];
        let phased = if sw > 1 {
            let mut p = vec![0.0f32; cin_g * s.in_h * sw * s.in_w.div_ceil(sw)];
            phase_split(x_img, s.in_w, sw, &mut p);
            p
        } else {
            Vec::new()
        };
        for oh0 in (0..oh).step_by(tile) {
            let rows = tile.min(oh - oh0);
            let npix = rows * ow;
            let col = &mut col[..k * npix];
            im2col_nchw(job, if sw > 1 { &phased } else { x_img }, oh0, rows, ow, col);
            let spec = GemmSpec::new(cout_g, npix, k).strides(k, npix, plane_out).act(job.act);
            sgemm(&spec, wg, col, bias, &mut yc[oh0 * ow..], gp)?;
        }
        Ok(())
    })
}

/// NCHW im2col with the output-row tiles of every (image, group) spread over threads.
fn nchw_tiles(job: &ConvJob<'_>, y: &mut [f32], tile: usize) -> Result<(), KernelError> {
    let s = job.spec;
    let [oh, ow] = s.out_hw()?;
    let (g, cin_g, cout_g, k) = (s.groups, s.in_per_group(), s.out_per_group(), s.k());
    let (plane_in, plane_out) = (s.in_h * s.in_w, oh * ow);
    if cout_g == 0 || plane_out == 0 {
        return Ok(());
    }
    let sw = s.stride[1];
    let one = job.params.gemm.threads(1);
    for (idx, yc) in y.chunks_mut(cout_g * plane_out).enumerate() {
        let (n, gi) = (idx / g, idx % g);
        let x_img = &job.x[(n * s.in_channels + gi * cin_g) * plane_in..][..cin_g * plane_in];
        let wg = &job.w.gemm[gi * cout_g * k..][..cout_g * k];
        let bias = job.bias.map_or(Bias::None, |b| Bias::PerRow(&b[gi * cout_g..][..cout_g]));
        let phased = if sw > 1 {
            let mut p = vec![0.0f32; cin_g * s.in_h * sw * s.in_w.div_ceil(sw)];
            phase_split(x_img, s.in_w, sw, &mut p);
            p
        } else {
            Vec::new()
        };
        let src = if sw > 1 { &phased[..] } else { x_img };
        let starts: Vec<usize> = (0..oh).step_by(tile).collect();
        let mut tiles: Vec<Vec<f32>> = starts.iter().map(|&oh0| vec![0.0f32; cout_g * tile.min(oh - oh0) * ow]).collect();
        crate::par::try_run(starts.iter().zip(tiles.iter_mut()).collect(), crate::par::ALL, |_, (&oh0, out)| {
            let npix = tile.min(oh - oh0) * ow;
            let mut col = vec![0.0f32; k * npix];
            im2col_nchw(job, src, oh0, npix / ow, ow, &mut col);
            sgemm(&GemmSpec::new(cout_g, npix, k).act(job.act), wg, &col, bias, out, &one)
        })?;
        for (&oh0, out) in starts.iter().zip(&tiles) {
            let npix = out.len() / cout_g.max(1);
            for (co, src) in out.chunks_exact(npix).enumerate() {
                yc[co * plane_out + oh0 * ow..][..npix].copy_from_slice(src);
            }
        }
    }
    Ok(())
}

/// Column buffer `[cin/g * kh * kw, rows * ow]` for output rows `oh0..oh0 + rows`. With a
/// column stride above 1, `src` is the input already split by [`phase_split`].
fn im2col_nchw(job: &ConvJob<'_>, src: &[f32], oh0: usize, rows: usize, ow: usize, col: &mut [f32]) {
    let s = job.spec;
    let (h, w) = (s.in_h, s.in_w);
    let ([kh_n, kw_n], [sh, sw], [dh, dw]) = (s.kernel, s.stride, s.dilation);
    let (pt, pl) = (s.pads[0], s.pads[1]);
    // Length of one (phase-split) input row.
    let row_len = sw * w.div_ceil(sw);
    let npix = rows * ow;
    let mut r = 0;
    for plane in src.chunks_exact(h * row_len) {
        for kh in 0..kh_n {
            for kw in 0..kw_n {
                let dst_row = &mut col[r * npix..(r + 1) * npix];
                r += 1;
                let (lo, hi) = valid_range(kw * dw, pl, sw, w, ow);
                // First element read: input column lo * sw + kw * dw - pl, which sits at
                // `start / sw` of phase `start % sw` (the plain row when sw == 1).
                let start = lo * sw + kw * dw;
                let start = start.saturating_sub(pl);
                let offset = (start % sw) * w.div_ceil(sw) + start / sw;
                for (t, dst) in dst_row.chunks_exact_mut(ow).enumerate() {
                    let ih = (oh0 + t) * sh + kh * dh;
                    if ih < pt || ih - pt >= h || lo == hi {
                        dst.fill(0.0);
                        continue;
                    }
                    let src_row = &plane[(ih - pt) * row_len..][..row_len];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    dst[lo..hi].copy_from_slice(&src_row[offset..offset + hi - lo]);
                }
            }
        }
    }
}

fn nhwc(job: &ConvJob<'_>, y: &mut [f32]) -> Result<(), KernelError> {
    let s = job.spec;
    let [oh, ow] = s.out_hw()?;
    let (cout, k) = (s.out_channels, s.k());
    let tile = if job.params.tile_rows == 0 { oh } else { job.params.tile_rows.min(oh) };
    let mut items = Vec::new();
    for (n, yimg) in y.chunks_mut(oh * ow * cout).enumerate() {
        for (t, yt) in yimg.chunks_mut(tile * ow * cout).enumerate() {
            items.push((n, t * tile, yt));
        }
    }
    for_items(items, &job.params.gemm, |(n, oh0, yt), gp| {
        let rows = yt.len() / (ow * cout);
        let npix = rows * ow;
        let mut col = vec![0.0f32; npix * k];
        let cout_g = s.out_per_group();
        for gi in 0..s.groups {
            im2col_nhwc(job, n, gi, oh0, rows, ow, &mut col);
            let wg = &job.w.gemm[gi * k * cout_g..][..k * cout_g];
            let bias = job.bias.map_or(Bias::None, |b| Bias::PerCol(&b[gi * cout_g..][..cout_g]));
            let spec = GemmSpec::new(npix, cout_g, k).strides(k, cout_g, cout).act(job.act);
            sgemm(&spec, &col, wg, bias, &mut yt[gi * cout_g..], gp)?;
        }
        Ok(())
    })
}

/// Column buffer `[rows * ow, kh * kw * cin/g]` of group `gi` of image `n`.
#[allow(clippy::too_many_arguments)]
fn im2col_nhwc(job: &ConvJob<'_>, n: usize, gi: usize, oh0: usize, rows: usize, ow: usize, col: &mut [f32]) {
    let s = job.spec;
    let (h, w, cin) = (s.in_h, s.in_w, s.in_channels);
    let cin_g = s.in_per_group();
    let ([kh_n, kw_n], [sh, sw], [dh, dw]) = (s.kernel, s.stride, s.dilation);
    let (pt, pl) = (s.pads[0], s.pads[1]);
    let k = s.k();
    debug_assert_eq!(k, kh_n * kw_n * cin_g);
    let x_img = &job.x[n * h * w * cin..][..h * w * cin];
    // With one group and no column dilation, the kw taps of a kernel row read adjacent input
    // pixels: one copy of kw * cin values instead of kw copies of cin.
    let runs = s.groups == 1 && dw == 1;
    for (p, dst_pix) in col.chunks_exact_mut(k).take(rows * ow).enumerate() {
        let (oy, ox) = (oh0 + p / ow, p % ow);
        for (kh, dst_row) in dst_pix.chunks_exact_mut(kw_n * cin_g).enumerate() {
            let ih = oy * sh + kh * dh;
            if ih < pt || ih - pt >= h {
                dst_row.fill(0.0);
                continue;
            }
            let x_row = &x_img[(ih - pt) * w * cin..][..w * cin];
            let iw0 = ox * sw;
            if runs && iw0 >= pl && iw0 + kw_n - pl <= w {
                dst_row.copy_from_slice(&x_row[(iw0 - pl) * cin..][..kw_n * cin]);
                continue;
            }
            for (kw, dst) in dst_row.chunks_exact_mut(cin_g).enumerate() {
                let iw = iw0 + kw * dw;
                if iw < pl || iw - pl >= w {
                    dst.fill(0.0);
                } else {
                    dst.copy_from_slice(&x_row[(iw - pl) * cin + gi * cin_g..][..cin_g]);
                }
            }
        }
    }
}

/// NHWC 1x1: the whole batch is one `[n*h*w, cin]` matrix; one GEMM per group.
fn nhwc_pointwise(job: &ConvJob<'_>, y: &mut [f32]) -> Result<(), KernelError> {
    let s = job.spec;
    let (cin, cout, cin_g, cout_g) = (s.in_channels, s.out_channels, s.in_per_group(), s.out_per_group());
    let m = s.batch * s.in_h * s.in_w;
    if let Some(panels) = &job.w.panels {
        let bias = job.bias.map_or(Bias::None, Bias::PerCol);
        return sgemm_packed(&GemmSpec::new(m, cout, cin).act(job.act), job.x, panels, bias, y, &job.params.gemm);
    }
    for gi in 0..s.groups {
        let wg = &job.w.gemm[gi * cin_g * cout_g..][..cin_g * cout_g];
        let bias = job.bias.map_or(Bias::None, |b| Bias::PerCol(&b[gi * cout_g..][..cout_g]));
        let spec = GemmSpec::new(m, cout_g, cin_g).strides(cin, cout_g, cout).act(job.act);
        sgemm(&spec, &job.x[gi * cin_g..], wg, bias, &mut y[gi * cout_g..], &job.params.gemm)?;
    }
    Ok(())
}
