//! `unsafe` of our GEMM microkernels: 64-byte aligned buffers and the AVX-512 / AVX2 register
//! tiles (vector loads and stores through raw pointers, `#[target_feature]` functions called
//! after run-time detection). The blocked driver around them is safe code in `micro.rs`.
//!
//! Why `unsafe` is unavoidable here:
//! - [`AlignedVec`] hands out its 64-byte aligned blocks as one `&[f32]`: a cast of the block
//!   pointer (sound: each block is exactly sixteen `f32`, without padding).
//! - The tiles load packed A and B and load/store C with `_mm512_loadu_ps` and friends, which
//!   take raw pointers. Each tile checks the lengths once before its loop; the SAFETY comments
//!   say which check covers which access.
//! - [`macro_kernel`] calls the `#[target_feature]` loops only after [`Isa::effective`]
//!   detected the features.
#![allow(unsafe_code)]

use super::isa::Isa;
use super::micro_tile::{FAR_EVERY, MacroJob, TileArgs, TileEpi, Tiled, macro_body, tile_fits, tile_portable};

/// Sixteen `f32` on a 64-byte boundary (one cache line, one zmm register).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A zero-initialised `f32` buffer whose first element is 64-byte aligned, so packed panels
/// whose width is a multiple of 16 start every row on a cache line.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AlignedVec {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedVec {
    pub(crate) fn zeros(len: usize) -> Self {
        AlignedVec { lines: vec![Line([0.0; 16]); len.div_ceil(16)], len }
    }

    /// Makes room for `len` elements (contents unspecified, callers overwrite what they read).
    pub(crate) fn resize(&mut self, len: usize) {
        if self.lines.len() < len.div_ceil(16) {
            self.lines.resize(len.div_ceil(16), Line([0.0; 16]));
        }
        self.len = len;
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]` with size 64 = 16 * 4 (no padding),
        // so `lines` is `16 * lines.len()` contiguous initialised f32, and `len` never exceeds
        // that (`zeros`/`resize` keep `lines.len() >= len.div_ceil(16)`).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`; the slice borrows `self` mutably, so it is unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::act512;
    use super::super::activation::Bias;
    use super::{FAR_EVERY, TileArgs, TileEpi, Tiled, tile_fits};

    /// `C[.., col..col + ncols] = alpha * A B + beta * C` for an `MR x 16 NV` register tile;
    /// false (nothing written) if the operands do not fit.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[inline]
    pub(super) fn tile_avx512<const MR: usize, const NV: usize>(t: &TileArgs<'_>, c: &mut [&mut [f32]]) -> Tiled {
        // The panel is exactly the tile wide: B rows are 16 NV apart (a constant stride).
        if t.b_rs != NV * 16 || !tile_fits(t, c, MR, NV * 16) {
            return Tiled::Misfit;
        }
        for row in c.iter() {
            for v in 0..NV {
                // Bring C into L1 while the product runs (a hint: any address is fine).
                _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(t.col + v * 16).cast());
            }
        }
        // SAFETY: `tile_fits(t, c, MR, 16 NV)` and `b_rs == 16 NV` held above.
        let acc = unsafe { if t.a_rs == 0 { acc_packed::<MR, NV>(t) } else { acc_rows::<MR, NV>(t) } };
        let (alpha, beta) = (_mm512_set1_ps(t.alpha), _mm512_set1_ps(t.beta));
        // The epilogue's per-column bias, one register per 16 columns (zero past its end).
        let mut col_bias = [_mm512_setzero_ps(); NV];
        if let Some(TileEpi { bias: Bias::PerCol(b), .. }) = t.epi {
            for (v, reg) in col_bias.iter_mut().enumerate() {
                let mut lanes = [0.0f32; 16];
                let src = b.get(v * 16..).unwrap_or(&[]);
                let len = src.len().min(16);
                lanes[..len].copy_from_slice(&src[..len]);
                // SAFETY: `lanes` holds 16 floats.
                *reg = unsafe { _mm512_loadu_ps(lanes.as_ptr()) };
            }
        }
        for (r, (row, acc_r)) in c.iter_mut().zip(&acc).enumerate() {
            let dst = row[t.col..].as_mut_ptr();
            let row_bias = match t.epi {
                Some(TileEpi { bias: Bias::PerRow(b), row0, .. }) => b.get(row0 + r).copied().unwrap_or(0.0),
                _ => 0.0,
            };
            for (v, s) in acc_r.iter().enumerate() {
                let lanes = t.ncols.saturating_sub(v * 16).min(16);
                let mask: __mmask16 = ((1u32 << lanes) - 1) as u16;
                // SAFETY: the masked load/store touch lanes v 16 + l < ncols only, and every
                // C row holds col + ncols elements (`tile_fits`); masked-off lanes never fault.
                unsafe {
                    let mut x = _mm512_mul_ps(*s, alpha);
                    if t.beta != 0.0 {
                        x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, dst.add(v * 16)), beta, x);
                    }
                    if let Some(e) = t.epi {
                        x = _mm512_add_ps(_mm512_add_ps(x, col_bias[v]), _mm512_set1_ps(row_bias));
                        x = act512::apply(e.act, x);
                    }
                    _mm512_mask_storeu_ps(dst.add(v * 16), mask, x);
                }
            }
        }
        if t.epi.is_some() { Tiled::Finished } else { Tiled::Stored }
    }

    /// Runs `steps` over the tile's k steps `0..kc`: while the tile has lines to bring into
    /// L2 ([`TileArgs::ahead`]), in runs of [`FAR_EVERY`] steps with one line prefetched
    /// before each run (few line-fill buffers then wait on memory at once), then the rest in
    /// one go (a per-step check in the k loop had slowed it by 5%).
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[inline]
    fn spread(t: &TileArgs<'_>, mut steps: impl FnMut(usize, usize)) {
        let runs = t.ahead.len().div_ceil(16).min(t.kc / FAR_EVERY);
        let ahead = t.ahead.as_ptr();
        for i in 0..runs {
            // A hint (never faults); line i of `ahead`.
            _mm_prefetch::<_MM_HINT_T1>(ahead.wrapping_add(16 * i).cast());
            steps(i * FAR_EVERY, (i + 1) * FAR_EVERY);
        }
        steps(runs * FAR_EVERY, t.kc);
    }

    /// B rows ahead of the one in use that the tiles prefetch (the B block streams from L2).
    const B_PREFETCH: usize = 8;

    /// B row `p` of a tile, prefetching the row `B_PREFETCH` steps ahead.
    ///
    /// # Safety
    /// `p < t.kc`, `t.b_rs == 16 NV` and `tile_fits(t, _, _, 16 NV)`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn b_row<const NV: usize>(t: &TileArgs<'_>, p: usize) -> [__m512; NV] {
        let b = t.b.as_ptr();
        for v in 0..NV {
            // A hint (any address is fine, so no bounds matter).
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + B_PREFETCH) * NV * 16 + v * 16).cast());
        }
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: p < kc and b_rs = 16 NV (the contract), so the 16 lanes end at
            // p b_rs + 16 NV <= (kc - 1) b_rs + 16 NV <= b.len() (`tile_fits`).
            *x = unsafe { _mm512_loadu_ps(b.add((p * NV + v) * 16)) };
        }
        bv
    }

    /// `A B` over a tile from a packed A panel.
    ///
    /// # Safety
    /// `tile_fits(t, _, MR, 16 NV)` and `t.b_rs == 16 NV`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn acc_packed<const MR: usize, const NV: usize>(t: &TileArgs<'_>) -> [[__m512; NV]; MR] {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        // SAFETY: this function's contract; every range lies in 0..kc.
        spread(t, |p0, p1| unsafe { steps_packed::<MR, NV>(t, &mut acc, p0, p1) });
        acc
    }

    /// k steps `p0..p1` of [`acc_packed`]. (It and [`steps_rows`] differ only in where A's
    /// element is: one generic function with the address as a closure was not inlined into
    /// the k runs, and ran at a third of the speed.)
    ///
    /// # Safety
    /// As [`acc_packed`], and `p1 <= t.kc`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn steps_packed<const MR: usize, const NV: usize>(t: &TileArgs<'_>, acc: &mut [[__m512; NV]; MR], p0: usize, p1: usize) {
        let a = t.a.as_ptr();
        for p in p0..p1 {
            // SAFETY: p < kc; this function's contract gives `tile_fits`.
            let bv = unsafe { b_row::<NV>(t, p) };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: p MR + r < kc MR <= a.len() (`tile_fits`).
                let av = _mm512_set1_ps(unsafe { *a.add(p * MR + r) });
                for (s, x) in acc_r.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(av, *x, *s);
                }
            }
        }
    }

    /// `A B` over a tile from rows of A in place.
    ///
    /// # Safety
    /// `tile_fits(t, _, MR, 16 NV)`, `t.b_rs == 16 NV` and `t.a_rs > 0`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn acc_rows<const MR: usize, const NV: usize>(t: &TileArgs<'_>) -> [[__m512; NV]; MR] {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        // SAFETY: this function's contract; every range lies in 0..kc.
        spread(t, |p0, p1| unsafe { steps_rows::<MR, NV>(t, &mut acc, p0, p1) });
        acc
    }

    /// k steps `p0..p1` of [`acc_rows`].
    ///
    /// # Safety
    /// As [`acc_rows`], and `p1 <= t.kc`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn steps_rows<const MR: usize, const NV: usize>(t: &TileArgs<'_>, acc: &mut [[__m512; NV]; MR], p0: usize, p1: usize) {
        let lda = t.a_rs;
        let row = |r: usize| r.min(t.a_rows - 1) * lda;
        let a = t.a.as_ptr();
        for p in p0..p1 {
            // SAFETY: p < kc; this function's contract gives `tile_fits`.
            let bv = unsafe { b_row::<NV>(t, p) };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: row r' = min(r, a_rows - 1) starts at r' a_rs, and r' a_rs + p <
                // (a_rows - 1) a_rs + kc <= a.len() (`tile_fits`).
                let av = _mm512_set1_ps(unsafe { *a.add(row(r) + p) });
                for (s, x) in acc_r.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(av, *x, *s);
                }
            }
        }
    }

    /// The AVX2 tile: `MR x 16` (two ymm per row), partial tiles through a local buffer.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn tile_avx2<const MR: usize>(t: &TileArgs<'_>, c: &mut [&mut [f32]]) -> Tiled {
        if t.a_rs != 0 || !tile_fits(t, c, MR, 16) {
            return Tiled::Misfit;
        }
        let (a, b, b_rs) = (t.a.as_ptr(), t.b.as_ptr(), t.b_rs);
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for p in 0..t.kc {
            // SAFETY: p b_rs + 16 <= (kc - 1) b_rs + 16 <= b.len() (`tile_fits`).
            let bv = unsafe { [_mm256_loadu_ps(b.add(p * b_rs)), _mm256_loadu_ps(b.add(p * b_rs + 8))] };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: p MR + r < kc MR <= a.len() (`tile_fits`).
                let av = _mm256_set1_ps(unsafe { *a.add(p * MR + r) });
                acc_r[0] = _mm256_fmadd_ps(av, bv[0], acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(av, bv[1], acc_r[1]);
            }
        }
        let (alpha, beta) = (_mm256_set1_ps(t.alpha), _mm256_set1_ps(t.beta));
        for (row, acc_r) in c.iter_mut().zip(&acc) {
            let dst = &mut row[t.col..t.col + t.ncols];
            let mut tmp = [0.0f32; 16];
            if dst.len() == 16 {
                tmp.copy_from_slice(dst);
            } else if t.beta != 0.0 {
                tmp[..dst.len()].copy_from_slice(dst);
            }
            for (v, s) in acc_r.iter().enumerate() {
                // SAFETY: v 8 + 8 <= 16 = tmp.len().
                unsafe {
                    let p = tmp.as_mut_ptr().add(v * 8);
                    let mut x = _mm256_mul_ps(*s, alpha);
                    if t.beta != 0.0 {
                        x = _mm256_fmadd_ps(_mm256_loadu_ps(p), beta, x);
                    }
                    _mm256_storeu_ps(p, x);
                }
            }
            dst.copy_from_slice(&tmp[..dst.len()]);
        }
        Tiled::Stored
    }

    /// The whole macro-kernel compiled for AVX-512, the tile inlined (one function per tile).
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    pub(super) fn macro_avx512(job: &super::MacroJob<'_>, c: &mut [&mut [f32]]) -> bool {
        match (job.mr, job.sub) {
            (14, 16) => super::macro_body(job, c, true, |t, c| tile_avx512::<14, 1>(t, c)),
            (14, 32) => super::macro_body(job, c, true, |t, c| tile_avx512::<14, 2>(t, c)),
            (12, 32) => super::macro_body(job, c, true, |t, c| tile_avx512::<12, 2>(t, c)),
            (8, 48) => super::macro_body(job, c, true, |t, c| tile_avx512::<8, 3>(t, c)),
            (6, 64) => super::macro_body(job, c, true, |t, c| tile_avx512::<6, 4>(t, c)),
            _ => false,
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn macro_avx2(job: &super::MacroJob<'_>, c: &mut [&mut [f32]]) -> bool {
        match (job.mr, job.sub) {
            (6, 16) => super::macro_body(job, c, false, |t, c| tile_avx2::<6>(t, c)),
            _ => false,
        }
    }
}

/// Asks for the cache lines of `data` to be brought into L2 (no effect elsewhere than x86-64;
/// a prefetch never faults, and the addresses come from a slice).
#[inline(always)]
pub(crate) fn prefetch_l2(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for i in (0..data.len()).step_by(16) {
        // SAFETY: prefetch is a hint that never faults; the address lies inside `data`.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(data.as_ptr().add(i).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Runs one macro-kernel (every tile of a packed A block times a packed B block, with the
/// epilogue on the last k block) with the tile of `isa`; `job.mr`/`job.sub` must be what
/// [`super::micro_tile::geometry`] gave for that ISA. False if a size did not fit (nothing is
/// written then for the tile that did not fit).
pub(crate) fn macro_kernel(isa: Isa, job: &MacroJob<'_>, c: &mut [&mut [f32]]) -> bool {
    #[cfg(target_arch = "x86_64")]
    match isa.effective() {
        // SAFETY: `effective` returns Avx512 only when is_x86_feature_detected! reported
        // avx512f/vl/bw/dq, avx2 and fma on this CPU.
        Isa::Avx512 => return unsafe { x86::macro_avx512(job, c) },
        // SAFETY: `effective` returns Avx2Fma only when avx2 and fma were detected.
        Isa::Avx2Fma => return unsafe { x86::macro_avx2(job, c) },
        _ => {}
    }
    let _ = isa;
    macro_body(job, c, false, tile_portable)
}
