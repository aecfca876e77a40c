//! `unsafe` of the int8 GEMM: the VNNI / AVX2 register tiles (vector loads through raw
//! pointers, `#[target_feature]` functions) and their fused epilogue. The quantization loops
//! are in `arch_qquant.rs`; the driver, packing and portable epilogue are safe code in
//! `qgemm.rs` / `qgemm_part.rs` / `qpack.rs`.
//!
//! Why `unsafe` is unavoidable here:
//! - The tiles load 4 bytes of A per row (broadcast) and 64 bytes of packed B per panel and
//!   k group with `_mm512_loadu_si512` and friends, which take raw pointers, and the fused
//!   epilogue loads and stores its columns with masks. [`tile`] / [`tile_f32`] check every
//!   length once before the loop (`TileIn::fits`, `TileEpi::fits`, the output length); the
//!   SAFETY comments say which check covers which access.
//! - `#[target_feature]` functions are called only after [`QIsa::effective`] detected the
//!   features.
#![allow(unsafe_code)]

use super::qgemm::{PANEL, QIsa};

/// One tile's operands: `MR` rows of A (u8, row stride `lda`, `kg` groups of 4 bytes from
/// `a_off`) against `nv` panels of packed B (`kg * 64` bytes each, from `b_off`).
pub(crate) struct TileIn<'a> {
    pub a: &'a [u8],
    pub a_off: usize,
    pub lda: usize,
    pub b: &'a [i8],
    pub b_off: usize,
    pub kg: usize,
}

impl TileIn<'_> {
    /// Whether `mr` rows and `nv` panels lie inside A and B.
    fn fits(&self, mr: usize, nv: usize) -> bool {
        let a_need = (mr - 1).checked_mul(self.lda).and_then(|x| x.checked_add(self.kg * 4)).and_then(|x| x.checked_add(self.a_off));
        let b_need = nv.checked_mul(self.kg * PANEL * 4).and_then(|x| x.checked_add(self.b_off));
        mr >= 1 && self.lda >= self.kg * 4 && a_need.is_some_and(|n| n <= self.a.len()) && b_need.is_some_and(|n| n <= self.b.len())
    }
}

/// The float epilogue of one tile, applied in registers: for `rows x cols` (at most the tile),
/// `out[r * ldo + c] = (acc + comp[c] - zb[c] row_sums[r]) as f32 * scale[c] + bias[c]`.
pub(crate) struct TileEpi<'a> {
    pub comp: &'a [i32],
    pub zb: Option<&'a [i32]>,
    pub row_sums: &'a [i32],
    pub scale: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub out: &'a mut [f32],
    pub ldo: usize,
    pub rows: usize,
    pub cols: usize,
}

impl TileEpi<'_> {
    fn fits(&self, mr: usize, nv: usize) -> bool {
        let (rows, cols) = (self.rows, self.cols);
        let out_need = (rows.max(1) - 1).checked_mul(self.ldo).and_then(|x| x.checked_add(cols));
        (1..=mr).contains(&rows)
            && (1..=nv * PANEL).contains(&cols)
            && self.comp.len() >= cols
            && self.zb.is_none_or(|z| z.len() >= cols)
            && self.scale.len() >= cols
            && self.bias.is_none_or(|b| b.len() >= cols)
            && self.row_sums.len() >= rows
            && out_need.is_some_and(|n| n <= self.out.len())
    }
}

/// Where a tile goes: raw sums (`mr x 16 nv`, row-major) or through the float epilogue.
pub(crate) enum Dst<'o, 'e> {
    I32(&'o mut [i32]),
    F32(&'o mut TileEpi<'e>),
}

/// The tile with the float epilogue in registers; false when `isa` has no such tile (then the
/// caller computes raw sums and runs the portable epilogue).
pub(crate) fn tile_f32(isa: QIsa, mr: usize, nv: usize, t: &TileIn<'_>, e: &mut TileEpi<'_>) -> bool {
    if !t.fits(mr, nv) || !e.fits(mr, nv) {
        return false;
    }
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx512Vnni => x86::dispatch_512(mr, nv, t, Dst::F32(e)),
        #[cfg(target_arch = "x86_64")]
        QIsa::Amx => {
            let mut acc = [0i32; super::arch_qamx::MR * 2 * PANEL];
            let acc = &mut acc[..super::arch_qamx::MR * nv * PANEL];
            // SAFETY: AMX implies AVX-512 (`arch_qamx::available` checks it).
            mr == super::arch_qamx::MR && super::arch_qamx::tile(nv, t, acc) && unsafe { x86::epilogue_512_from(acc, nv * PANEL, e) }
        }
        _ => false,
    }
}

/// `out[r * nv * 16 + c] = sum_k A[r][k] B[k][c]` (u8 x i8 -> i32, no compensation) for an
/// `mr x 16 nv` tile; false when `isa` has no tile of that shape or the operands do not fit
/// (the caller then uses the portable tile).
pub(crate) fn tile(isa: QIsa, mr: usize, nv: usize, t: &TileIn<'_>, out: &mut [i32]) -> bool {
    if !t.fits(mr, nv) || out.len() < mr * nv * PANEL {
        return false;
    }
    match isa.effective() {
        QIsa::Amx => mr == super::arch_qamx::MR && super::arch_qamx::tile(nv, t, out),
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx512Vnni => x86::dispatch_512(mr, nv, t, Dst::I32(out)),
        #[cfg(target_arch = "x86_64")]
        QIsa::AvxVnni => x86::dispatch_256(mr, nv, t, out, true),
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx2 => x86::dispatch_256(mr, nv, t, out, false),
        _ => false,
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Dst, PANEL, TileEpi, TileIn};
    use std::arch::x86_64::*;

    /// The AVX-512 VNNI tiles: `MR x NV` zmm accumulators, one `vpdpbusd` per row and panel
    /// and k group.
    pub(super) fn dispatch_512(mr: usize, nv: usize, t: &TileIn<'_>, mut dst: Dst<'_, '_>) -> bool {
        if !is_x86_feature_detected!("avx512vnni") {
            return false;
        }
        macro_rules! go {
            ($mr:literal, $nv:literal) => {
                // SAFETY: AVX-512 F/BW + VNNI detected (`QIsa::effective` and just above);
                // `tile` / `tile_f32` checked `t.fits(mr, nv)` and the destination's size.
                unsafe { tile_512::<$mr, $nv>(t, &mut dst) }
            };
        }
        match (mr, nv) {
            (8, 3) => go!(8, 3),
            (8, 2) => go!(8, 2),
            (8, 1) => go!(8, 1),
            (6, 4) => go!(6, 4),
            (6, 3) => go!(6, 3),
            (6, 2) => go!(6, 2),
            (6, 1) => go!(6, 1),
            (12, 2) => go!(12, 2),
            (12, 1) => go!(12, 1),
            _ => return false,
        }
        true
    }

    /// The raw sums of one tile, in registers (a function of its own, so that the loop keeps
    /// every accumulator in a register whatever the destination code around it).
    ///
    /// # Safety
    /// AVX-512 F/BW and VNNI are available and `t.fits(MR, NV)`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")]
    #[inline(never)]
    unsafe fn acc_512<const MR: usize, const NV: usize>(t: &TileIn<'_>) -> [[__m512i; NV]; MR] {
        let mut acc = [[_mm512_setzero_si512(); NV]; MR];
        let pstride = t.kg * PANEL * 4;
        let a = t.a.as_ptr().wrapping_add(t.a_off);
        let b = t.b.as_ptr().wrapping_add(t.b_off);
        for g in 0..t.kg {
            let mut bv = [_mm512_setzero_si512(); NV];
            for (v, bv) in bv.iter_mut().enumerate() {
                // SAFETY: panel v < NV, group g < kg: byte v kg 64 + 64 g + 63 < NV kg 64,
                // inside B by `fits`.
                *bv = unsafe { _mm512_loadu_si512(b.add(v * pstride + g * 64).cast()) };
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: row r < MR, bytes 4g..4g+4 < 4 kg <= lda: inside A by `fits`.
                let ar = unsafe { a.add(r * t.lda + g * 4).cast::<i32>().read_unaligned() };
                let av = _mm512_set1_epi32(ar);
                for (acc, bv) in acc_r.iter_mut().zip(&bv) {
                    *acc = _mm512_dpbusd_epi32(*acc, av, *bv);
                }
            }
        }
        acc
    }

    /// # Safety
    /// AVX-512 F/BW and VNNI are available, `t.fits(MR, NV)`, and `dst` holds `MR NV 16` i32
    /// or its epilogue `fits(MR, NV)`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")]
    unsafe fn tile_512<const MR: usize, const NV: usize>(t: &TileIn<'_>, dst: &mut Dst<'_, '_>) {
        // SAFETY: forwarded (`t.fits(MR, NV)`).
        let acc = unsafe { acc_512::<MR, NV>(t) };
        match dst {
            Dst::I32(out) => {
                for (r, acc_r) in acc.iter().enumerate() {
                    for (v, acc) in acc_r.iter().enumerate() {
                        // SAFETY: (r NV + v) 16 + 15 < MR NV 16 <= out.len() (checked by `tile`).
                        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add((r * NV + v) * PANEL).cast(), *acc) };
                    }
                }
            }
            Dst::F32(e) => epilogue_512(&acc, e),
        }
    }

    /// The float epilogue of [`TileEpi`] on the accumulators, column lanes past `cols` masked.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    fn epilogue_512<const MR: usize, const NV: usize>(acc: &[[__m512i; NV]; MR], e: &mut TileEpi<'_>) {
        for (r, acc_r) in acc.iter().enumerate().take(e.rows) {
            epilogue_row(r, acc_r, e);
        }
    }

    /// The epilogue from raw sums in memory (`acc[r * width + c]`, the AMX tile's output).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    pub(super) fn epilogue_512_from(acc: &[i32], width: usize, e: &mut TileEpi<'_>) -> bool {
        let nv = width / PANEL;
        if !(1..=2).contains(&nv) || acc.len() < e.rows * width || e.cols > width {
            return false;
        }
        for r in 0..e.rows {
            let mut row = [_mm512_setzero_si512(); 2];
            for (v, x) in row.iter_mut().enumerate().take(nv) {
                // SAFETY: r width + 16 v + 15 < rows width <= acc.len() (checked above).
                *x = unsafe { _mm512_loadu_si512(acc.as_ptr().add(r * width + v * PANEL).cast()) };
            }
            epilogue_row(r, &row[..nv], e);
        }
        true
    }

    /// Row `r` of the epilogue from its accumulators (`acc_r[v]`: columns 16 v .. 16 v + 16).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[inline]
    fn epilogue_row(r: usize, acc_r: &[__m512i], e: &mut TileEpi<'_>) {
        if r >= e.rows {
            return;
        }
        let rs = _mm512_set1_epi32(e.row_sums.get(r).copied().unwrap_or(0));
        for (v, acc) in acc_r.iter().enumerate() {
            let lanes = e.cols.saturating_sub(v * PANEL).min(PANEL);
            if lanes == 0 {
                break;
            }
            let mask = ((1u32 << lanes) - 1) as u16;
            let at = v * PANEL;
            // SAFETY: the masked loads and stores touch columns at + l < cols only; `fits`
            // checked comp, zb, scale and bias hold cols elements, and out holds
            // (rows - 1) ldo + cols with r < rows. Masked-off lanes never fault.
            unsafe {
                let mut x = _mm512_add_epi32(*acc, _mm512_maskz_loadu_epi32(mask, e.comp.as_ptr().add(at)));
                if let Some(zb) = e.zb {
                    x = _mm512_sub_epi32(x, _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(mask, zb.as_ptr().add(at)), rs));
                }
                let mut f = _mm512_mul_ps(_mm512_cvtepi32_ps(x), _mm512_maskz_loadu_ps(mask, e.scale.as_ptr().add(at)));
                if let Some(b) = e.bias {
                    f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(mask, b.as_ptr().add(at)));
                }
                _mm512_mask_storeu_ps(e.out.as_mut_ptr().add(r * e.ldo + at), mask, f);
            }
        }
    }

    /// The 256-bit tiles: AVX-VNNI `vpdpbusd ymm` (`vnni`), else AVX2 (u8 and i8 widened to
    /// i16, `vpmaddwd`: exact, unlike `vpmaddubsw`, which saturates).
    pub(super) fn dispatch_256(mr: usize, nv: usize, t: &TileIn<'_>, out: &mut [i32], vnni: bool) -> bool {
        if vnni && !is_x86_feature_detected!("avxvnni") {
            return false;
        }
        macro_rules! go {
            ($f:ident, $mr:literal) => {
                // SAFETY: the tile's features were detected (`QIsa::effective`, and AVX-VNNI
                // just above); `tile` checked `t.fits(mr, 1)` and that out holds mr 16.
                unsafe { $f::<$mr>(t, out) }
            };
        }
        match (vnni, mr, nv) {
            (true, 6, 1) => go!(tile_avxvnni, 6),
            (true, 4, 1) => go!(tile_avxvnni, 4),
            (false, 2, 1) => go!(tile_avx2, 2),
            (false, 1, 1) => go!(tile_avx2, 1),
            _ => return false,
        }
        true
    }

    /// # Safety
    /// AVX2 and AVX-VNNI are available, `t.fits(MR, 1)` and `out.len() >= 16 MR`.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    unsafe fn tile_avxvnni<const MR: usize>(t: &TileIn<'_>, out: &mut [i32]) {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        let a = t.a.as_ptr().wrapping_add(t.a_off);
        let b = t.b.as_ptr().wrapping_add(t.b_off);
        for g in 0..t.kg {
            // SAFETY: bytes 64 g .. 64 g + 64 of one panel: inside B by `fits`.
            let bv = unsafe { [_mm256_loadu_si256(b.add(g * 64).cast()), _mm256_loadu_si256(b.add(g * 64 + 32).cast())] };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: row r < MR, bytes 4g..4g+4 < 4 kg <= lda: inside A by `fits`.
                let av = _mm256_set1_epi32(unsafe { a.add(r * t.lda + g * 4).cast::<i32>().read_unaligned() });
                acc_r[0] = _mm256_dpbusd_avx_epi32(acc_r[0], av, bv[0]);
                acc_r[1] = _mm256_dpbusd_avx_epi32(acc_r[1], av, bv[1]);
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (h, acc) in acc_r.iter().enumerate() {
                // SAFETY: r 16 + 8 h + 7 < MR 16 <= out.len() by `fits`.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(r * PANEL + h * 8).cast(), *acc) };
            }
        }
    }

    /// # Safety
    /// AVX2 is available, `t.fits(MR, 1)` and `out.len() >= 16 MR`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_avx2<const MR: usize>(t: &TileIn<'_>, out: &mut [i32]) {
        // acc[r][q]: columns 4q..4q+4, two partial sums (k pairs) per column.
        let mut acc = [[_mm256_setzero_si256(); 4]; MR];
        let a = t.a.as_ptr().wrapping_add(t.a_off);
        let b = t.b.as_ptr().wrapping_add(t.b_off);
        for g in 0..t.kg {
            let mut bv = [_mm256_setzero_si256(); 4];
            for (q, bv) in bv.iter_mut().enumerate() {
                // SAFETY: bytes 64 g + 16 q .. + 16 of one panel: inside B by `fits`.
                *bv = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(b.add(g * 64 + q * 16).cast()) });
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: row r < MR, bytes 4g..4g+4 < 4 kg <= lda: inside A by `fits`.
                let ar = unsafe { a.add(r * t.lda + g * 4).cast::<i32>().read_unaligned() };
                let av = _mm256_cvtepu8_epi16(_mm_set1_epi32(ar));
                for (acc, bv) in acc_r.iter_mut().zip(&bv) {
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(av, *bv));
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for h in 0..2 {
                // hadd pairs: lanes [c0 c1 c4 c5 | c2 c3 c6 c7] of this half, then in order.
                let s = _mm256_hadd_epi32(acc_r[2 * h], acc_r[2 * h + 1]);
                let s = _mm256_permute4x64_epi64::<0b11_01_10_00>(s);
                // SAFETY: r 16 + 8 h + 7 < MR 16 <= out.len() by `fits`.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(r * PANEL + h * 8).cast(), s) };
            }
        }
    }
}
