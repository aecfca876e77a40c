//! `unsafe` of the AVX-512 weight-only kernels of [`wgemm`](super::wgemm): each 16-column
//! panel row converted in registers (f16 by `vcvtph2ps`, bf16 by a shift or a mask of the
//! pair, uint8 and uint4 nibbles widened by `vpmovzxbd` then `(q - z) * s` with the group's
//! scale and zero point), either straight into the FMAs of a GEMV tile (up to 4 rows x 4
//! panels of accumulators: the weights are read once, in their precision) or stored as the
//! f32 panels the GEMM microkernels read.
//!
//! Why `unsafe` is unavoidable here: the panels are read with vector loads through raw
//! pointers, inside `#[target_feature]` functions called only after AVX-512 was detected.
//! [`gemv`] and [`unpack`] check every extent before calling them; the SAFETY comments say
//! which check covers which access.
#![allow(unsafe_code)]

use super::activation::{Bias, bias_act_body};
use super::isa::Isa;
use super::wgemv::GemvJob;
use super::wpack::{WKind, WPANEL, WPacked};

/// Panels per GEMV tile.
const P: usize = 4;
/// Rows per GEMV tile.
const R: usize = 4;

/// One panel's operands: values (pointer, bytes), group scales and zero points (rows of `ld`).
#[derive(Clone, Copy)]
struct Panel<'a> {
    ptr: *const u8,
    scale: &'a [f32],
    zero: &'a [f32],
}

/// Bytes of packed values rows `0..rows` of a panel span.
fn row_bytes(kind: WKind, rows: usize, pairs: usize) -> usize {
    match kind {
        WKind::F16 => rows * 2 * WPANEL,
        WKind::Bf16 => pairs * 4 * WPANEL,
        WKind::U8 => rows * WPANEL,
        WKind::U4 => rows * WPANEL / 2,
    }
}

/// Panel `p` with its extents checked for all `k` rows and `groups` scale rows of `ld`.
fn panel(w: &WPacked, p: usize) -> Option<Panel<'_>> {
    let (ptr, bytes, scale, zero) = w.panel_raw(p)?;
    let groups = w.k().div_ceil(w.group()).max(1);
    let ld = w.panels() * WPANEL;
    let int = matches!(w.kind(), WKind::U8 | WKind::U4);
    let params_fit = !int || (scale.len() >= (groups - 1) * ld + WPANEL && zero.len() >= (groups - 1) * ld + WPANEL);
    (bytes >= row_bytes(w.kind(), w.k(), w.pairs()) && params_fit).then_some(Panel { ptr, scale, zero })
}

/// Rows `rows` and columns `c0..c1` (`c0` a multiple of 16) of a GEMV job into `c` (row
/// slices from column `c0`) on AVX-512. None when AVX-512 is missing or the operands do not fit.
pub(crate) fn gemv(job: &GemvJob<'_>, (i0, i1): (usize, usize), (c0, c1): (usize, usize), c: &mut [&mut [f32]]) -> Option<()> {
    let (w, k) = (job.w, job.w.k());
    let fits = i0 <= i1 && i1 <= job.m && c.len() == i1 - i0 && job.x.len() >= job.m * k && c0.is_multiple_of(WPANEL) && c1 <= w.n();
    if !fits || Isa::Avx512.effective() != Isa::Avx512 || job.bias.is_some_and(|b| b.len() < c1) {
        return None;
    }
    let (p0, p1) = (c0 / WPANEL, c1.div_ceil(WPANEL));
    let ld = w.panels() * WPANEL;
    for pg in (p0..p1).step_by(P) {
        let np = P.min(p1 - pg);
        let panels: Vec<Panel<'_>> = (pg..pg + np).map(|p| panel(w, p)).collect::<Option<_>>()?;
        let (col, width) = (pg * WPANEL, ((pg + np) * WPANEL).min(c1) - pg * WPANEL);
        let mut i = i0;
        while i < i1 {
            let rows = R.min(i1 - i);
            let x: Vec<&[f32]> = (i..i + rows).map(|r| job.x.get(r * k..(r + 1) * k)).collect::<Option<_>>()?;
            let mut out = [[0f32; P * WPANEL]; R];
            let t = Tile { panels: &panels, x: &x, k, group: w.group(), ld };
            // SAFETY: `panel` checked every panel holds the bytes of all k rows (the pairs of
            // bf16 ones) and the scales and zero points of every group; each X row holds k
            // values; AVX-512 was detected above.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                x86::gemv(w.kind(), &t, &mut out)
            };
            for (r, o) in out.iter().enumerate().take(rows) {
                let dst = c.get_mut(i + r - i0)?.get_mut(col - c0..col - c0 + width)?;
                dst.copy_from_slice(&o[..width]);
                let bias = match job.bias {
                    Some(b) => Bias::PerCol(b.get(col..)?),
                    None => Bias::None,
                };
                bias_act_body(dst, width, width, i + r, bias, job.act);
            }
            i += rows;
        }
    }
    Some(())
}

/// Rows `pc..pc + kc`, columns `jc..jc + nc` (`jc` a multiple of `nr`) of `w` as f32 column
/// panels `[nc / nr][kc][nr]` on AVX-512 (see `wpack::unpack_body`). None when AVX-512 is
/// missing or the operands do not fit.
pub(crate) fn unpack(w: &WPacked, (pc, kc): (usize, usize), (jc, nc): (usize, usize), nr: usize, dst: &mut [f32]) -> Option<()> {
    let ok = nr > 0 && nr.is_multiple_of(WPANEL) && jc.is_multiple_of(WPANEL) && kc > 0 && pc + kc <= w.k();
    if !ok || dst.len() < nc.div_ceil(nr) * kc * nr || Isa::Avx512.effective() != Isa::Avx512 {
        return None;
    }
    let ld = w.panels() * WPANEL;
    for (q, block) in dst.chunks_exact_mut(kc * nr).take(nc.div_ceil(nr)).enumerate() {
        for sub in 0..nr / WPANEL {
            let p = (jc + q * nr) / WPANEL + sub;
            if p >= w.panels() {
                for row in block.chunks_exact_mut(nr) {
                    row[sub * WPANEL..(sub + 1) * WPANEL].fill(0.0);
                }
                continue;
            }
            let pan = panel(w, p)?;
            let out = block.get_mut(sub * WPANEL..)?;
            // `out` holds row i at i nr for i < kc: (kc - 1) nr + 16 <= its length.
            if out.len() < (kc - 1) * nr + WPANEL {
                return None;
            }
            // SAFETY: `panel` checked the panel's bytes for all k >= pc + kc rows and its
            // group parameters; `out` holds the kc rows checked above; AVX-512 was detected.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                x86::unpack(w.kind(), &pan, (pc, kc), (w.group(), ld), out.as_mut_ptr(), nr)
            };
        }
    }
    Some(())
}

/// A GEMV tile's operands: up to [`P`] panels, up to [`R`] rows of X (`k` each).
struct Tile<'a> {
    panels: &'a [Panel<'a>],
    x: &'a [&'a [f32]],
    k: usize,
    group: usize,
    ld: usize,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{P, Panel, R, Tile, WKind, WPANEL};
    use std::arch::x86_64::*;

    const F16: u8 = 0;
    const BF16: u8 = 1;
    const U8: u8 = 2;
    const U4: u8 = 3;

    fn code(kind: WKind) -> u8 {
        match kind {
            WKind::F16 => F16,
            WKind::Bf16 => BF16,
            WKind::U8 => U8,
            WKind::U4 => U4,
        }
    }

    /// Row `r` of a panel as 16 f32 (`s`, `z`: the group's scales and zero points).
    ///
    /// # Safety
    /// AVX-512 is available and the panel holds row `r` (its pair for bf16).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn row<const K: u8>(base: *const u8, r: usize, s: __m512, z: __m512) -> __m512 {
        // SAFETY: row r's bytes lie inside the panel (the caller's contract).
        unsafe {
            match K {
                F16 => _mm512_cvtph_ps(_mm256_loadu_si256(base.add(r * 2 * WPANEL).cast())),
                BF16 => {
                    let v = _mm512_loadu_si512(base.add(r / 2 * 4 * WPANEL).cast());
                    let v = if r.is_multiple_of(2) {
                        _mm512_slli_epi32(v, 16)
                    } else {
                        _mm512_and_si512(v, _mm512_set1_epi32(0xffff_0000u32 as i32))
                    };
                    _mm512_castsi512_ps(v)
                }
                U8 => {
                    let q = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(base.add(r * WPANEL).cast())));
                    _mm512_mul_ps(_mm512_sub_ps(q, z), s)
                }
                _ => {
                    let b = _mm_loadl_epi64(base.add(r * WPANEL / 2).cast());
                    let m = _mm_set1_epi8(15);
                    let q = _mm_unpacklo_epi64(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
                    let q = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q));
                    _mm512_mul_ps(_mm512_sub_ps(q, z), s)
                }
            }
        }
    }

    /// Group `g`'s scales and zero points of a panel (zeros for float weights).
    ///
    /// # Safety
    /// AVX-512 is available; for integer weights the panel holds group `g`'s 16 parameters.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn params<const K: u8>(p: &Panel<'_>, g: usize, ld: usize) -> (__m512, __m512) {
        if K == F16 || K == BF16 {
            return (_mm512_setzero_ps(), _mm512_setzero_ps());
        }
        // SAFETY: the caller's contract: g ld + 16 <= both lengths.
        unsafe { (_mm512_loadu_ps(p.scale.as_ptr().add(g * ld)), _mm512_loadu_ps(p.zero.as_ptr().add(g * ld))) }
    }

    /// # Safety
    /// AVX-512 is available; every panel holds all `k` rows and the parameters of every group;
    /// every X row holds `k` values; at most `P` panels and `R` rows.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    pub(super) unsafe fn gemv(kind: WKind, t: &Tile<'_>, out: &mut [[f32; P * WPANEL]; R]) {
        // SAFETY: passed on.
        unsafe {
            match (code(kind), t.panels.len() == P, t.x.len()) {
                (F16, true, 4) => tile::<F16, 4, 4>(t, out),
                (F16, _, 1) => tile::<F16, 1, 4>(t, out),
                (F16, _, _) => tile::<F16, 2, 4>(t, out),
                (BF16, true, 4) => tile::<BF16, 4, 4>(t, out),
                (BF16, _, 1) => tile::<BF16, 1, 4>(t, out),
                (BF16, _, _) => tile::<BF16, 2, 4>(t, out),
                (U8, true, 4) => tile::<U8, 4, 4>(t, out),
                (U8, _, 1) => tile::<U8, 1, 4>(t, out),
                (U8, _, _) => tile::<U8, 2, 4>(t, out),
                (_, true, 4) => tile::<U4, 4, 4>(t, out),
                (_, _, 1) => tile::<U4, 1, 4>(t, out),
                (_, _, _) => tile::<U4, 2, 4>(t, out),
            }
        }
    }

    /// Up to `RR` rows (2 or 1 serve 3 and fewer) x up to `PP` panels; rows past `t.x.len()`
    /// and panels past `t.panels.len()` are computed from the last ones and not stored.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn tile<const K: u8, const RR: usize, const PP: usize>(t: &Tile<'_>, out: &mut [[f32; P * WPANEL]; R]) {
        let (np, nx) = (t.panels.len(), t.x.len());
        if np == 0 || nx == 0 {
            return;
        }
        // Rows in chunks of RR (a 3-row call runs 2 + 1 with RR 2).
        let mut i0 = 0;
        while i0 < nx {
            let rows = RR.min(nx - i0);
            let mut acc = [[_mm512_setzero_ps(); PP]; RR];
            let mut g0 = 0;
            while g0 < t.k {
                let g1 = (g0 + t.group).min(t.k);
                let g = g0 / t.group;
                // SAFETY: every panel holds the parameters of every group (the caller's).
                let ps: [(__m512, __m512); PP] = std::array::from_fn(|p| unsafe { params::<K>(&t.panels[p.min(np - 1)], g, t.ld) });
                for r in g0..g1 {
                    // SAFETY: r < k: every panel holds row r, every X row value r.
                    let w: [__m512; PP] = std::array::from_fn(|p| unsafe { row::<K>(t.panels[p.min(np - 1)].ptr, r, ps[p].0, ps[p].1) });
                    for (i, acc_i) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(t.x[(i0 + i).min(nx - 1)][r]);
                        for (a, &wv) in acc_i.iter_mut().zip(&w) {
                            *a = _mm512_fmadd_ps(xv, wv, *a);
                        }
                    }
                }
                g0 = g1;
            }
            for (i, acc_i) in acc.iter().enumerate().take(rows) {
                for (p, &a) in acc_i.iter().enumerate().take(np) {
                    // SAFETY: out rows hold P * 16 f32 and p < PP <= P; i0 + i < nx <= R.
                    unsafe { _mm512_storeu_ps(out[i0 + i].as_mut_ptr().add(p * WPANEL), a) };
                }
            }
            i0 += rows;
        }
    }

    /// Rows `r0..r0 + rows` of a panel as f32 rows `nr` apart from `dst`.
    ///
    /// # Safety
    /// AVX-512 is available; the panel holds those rows and their groups' parameters (rows
    /// of `ld`, `group` rows each); `dst` is writable for `(rows - 1) nr + 16` f32.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    pub(super) unsafe fn unpack(
        kind: WKind,
        p: &Panel<'_>,
        (r0, rows): (usize, usize),
        (group, ld): (usize, usize),
        dst: *mut f32,
        nr: usize,
    ) {
        // SAFETY: passed on.
        unsafe {
            match code(kind) {
                F16 => unpack_k::<F16>(p, (r0, rows), (group, ld), dst, nr),
                BF16 => unpack_k::<BF16>(p, (r0, rows), (group, ld), dst, nr),
                U8 => unpack_k::<U8>(p, (r0, rows), (group, ld), dst, nr),
                _ => unpack_k::<U4>(p, (r0, rows), (group, ld), dst, nr),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    #[inline]
    unsafe fn unpack_k<const K: u8>(p: &Panel<'_>, (r0, rows): (usize, usize), (group, ld): (usize, usize), dst: *mut f32, nr: usize) {
        let mut r = r0;
        while r < r0 + rows {
            let end = ((r / group + 1) * group).min(r0 + rows);
            // SAFETY: the caller's contract: the panel holds rows r0..r0 + rows, their groups'
            // parameters, and dst row r - r0 (at (r - r0) nr, 16 f32).
            unsafe {
                let (s, z) = params::<K>(p, r / group, ld);
                for rr in r..end {
                    _mm512_storeu_ps(dst.add((rr - r0) * nr), row::<K>(p.ptr, rr, s, z));
                }
            }
            r = end;
        }
    }
}
