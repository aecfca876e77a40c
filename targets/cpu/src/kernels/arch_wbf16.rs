//! `unsafe` of the AVX512-BF16 tile of [`wgemm`](super::wgemm)
//! ([`WPath::Bf16Dot`](super::WPath::Bf16Dot)): `vdpbf16ps` on X rounded into bf16 pairs and
//! bf16 weights packed as pairs ([`WPacked`]), an `8 x 48` tile of f32 accumulators (products
//! of two bf16 are exact in f32; only the order of the sums differs from the reference).
//!
//! Why `unsafe` is unavoidable here: the tile loads the pairs through raw pointers
//! (`_mm512_loadu_si512`, one broadcast per row and pair) and is a `#[target_feature]`
//! function called only after [`available`] detected the features. [`part`] checks every
//! extent the tile reads before calling it; the SAFETY comments say which check covers which
//! access.
#![allow(unsafe_code)]

use super::activation::{Activation, Bias, bias_act_body};
use super::wpack::{WPANEL, WPacked};

/// Rows per tile.
pub(crate) const MR: usize = 8;
/// Panels (of 16 columns) per tile.
const NV: usize = 3;

/// The operands of a bf16 product: X as bf16 pairs (row `i`'s pair `j`, `x[2j]` in the low
/// half, at `a[i * ldp + j]`; `ldp` = `w.pairs()`; rows past m zero up to a whole tile of
/// every path that reads them), bf16 weights, the epilogue.
pub(crate) struct Bf16Job<'a> {
    pub a: &'a [u32],
    pub ldp: usize,
    pub w: &'a WPacked,
    pub bias: Option<&'a [f32]>,
    pub act: Activation,
}

impl Bf16Job<'_> {
    /// Whether the operands hold what a part over `rows` (rounded up to whole `mr` tiles)
    /// and column panels `p0..p1` reads: `(pairs used, panel stride in u16)`.
    pub(crate) fn extents(&self, rows: &std::ops::Range<usize>, (p0, p1): (usize, usize), mr: usize) -> Option<(usize, usize)> {
        let (w, ldp) = (self.w, self.ldp);
        let kh = w.k().div_ceil(2);
        let pstride = ldp * 2 * WPANEL;
        let a_rows = rows.end.div_ceil(mr) * mr;
        let ok = ldp == w.pairs()
            && kh <= ldp
            && p1 <= w.panels()
            && p0 <= p1
            && a_rows.checked_mul(ldp).is_some_and(|x| x <= self.a.len())
            && p1.checked_mul(pstride).is_some_and(|x| x <= w.halves().len())
            && self.bias.is_none_or(|b| b.len() >= w.n());
        ok.then_some((kh, pstride))
    }

    /// Rows `i0..` (up to `mr`, those inside `rows`) and `width` columns from `col` of a tile
    /// result `out` (rows of `ld`) into C with bias and activation.
    pub(crate) fn store(
        &self,
        (i0, rows, mr): (usize, &std::ops::Range<usize>, usize),
        (col, width, c0): (usize, usize, usize),
        out: &[f32],
        ld: usize,
        c: &mut [&mut [f32]],
    ) -> Option<()> {
        for r in 0..mr.min(rows.end - i0) {
            let dst = c.get_mut(i0 + r - rows.start)?.get_mut(col - c0..col - c0 + width)?;
            dst.copy_from_slice(out.get(r * ld..r * ld + width)?);
            let bias = match self.bias {
                Some(b) => Bias::PerCol(b.get(col..)?),
                None => Bias::None,
            };
            bias_act_body(dst, width, width, i0 + r, bias, self.act);
        }
        Some(())
    }
}

/// Whether this CPU has AVX-512 and AVX512-BF16.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::isa::has_avx512() && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rows `rows` (`rows.start` a multiple of [`MR`]) and columns `cols` (`cols.start` a multiple
/// of 16) of the product into `c` (row slices starting at `cols.start`). None when the CPU
/// lacks AVX512-BF16 or the operands do not fit.
pub(crate) fn part(job: &Bf16Job<'_>, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>, c: &mut [&mut [f32]]) -> Option<()> {
    let (p0, p1) = (cols.start / WPANEL, cols.end.div_ceil(WPANEL));
    let (kh, pstride) = job.extents(&rows, (p0, p1), MR)?;
    if !available() || !rows.start.is_multiple_of(MR) || !cols.start.is_multiple_of(WPANEL) || c.len() < rows.len() {
        return None;
    }
    for pg in (p0..p1).step_by(NV) {
        let nv = NV.min(p1 - pg);
        let (col, width) = (pg * WPANEL, ((pg + nv) * WPANEL).min(cols.end) - pg * WPANEL);
        for i0 in rows.clone().step_by(MR) {
            let mut out = [[0f32; NV * WPANEL]; MR];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `extents` checked that A holds `ldp` pairs for every row up to the tile
            // rows past `rows.end`, that `kh <= ldp`, and that the weights hold panels up to
            // `p1 >= pg + nv`, each `pstride` long; `available` detected the features.
            unsafe {
                let t =
                    Tile { a: job.a.as_ptr().add(i0 * job.ldp), ldp: job.ldp, b: job.w.halves().as_ptr().add(pg * pstride), pstride, kh };
                x86::tile(nv, &t, &mut out);
            }
            job.store((i0, &rows, MR), (col, width, cols.start), out.as_flattened(), NV * WPANEL, c)?;
        }
    }
    Some(())
}

/// One tile's operands: A rows `ldp` pairs apart, B panels `pstride` u16 apart, `kh` pairs.
#[derive(Clone, Copy)]
struct Tile {
    a: *const u32,
    ldp: usize,
    b: *const u16,
    pstride: usize,
    kh: usize,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NV, Tile, WPANEL};
    use std::arch::x86_64::*;

    /// `out[r][16 v + l] = sum_j pair(a[r * ldp + j]) . pair(b[v * pstride + 32 j + 2 l ..])`
    /// for `r < MR`, `v < nv`, `j < kh` (the fields of `t`).
    ///
    /// # Safety
    /// AVX-512 F/BW/VL and AVX512-BF16 are available; `t.a` is readable for `MR * ldp` u32
    /// with `kh <= ldp`, and `t.b` for `nv` panels of `pstride >= 32 kh` u16.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) unsafe fn tile(nv: usize, t: &Tile, out: &mut [[f32; NV * WPANEL]; MR]) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match nv {
                1 => tile_n::<1>(t, out),
                2 => tile_n::<2>(t, out),
                _ => tile_n::<NV>(t, out),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    #[inline]
    unsafe fn tile_n<const V: usize>(t: &Tile, out: &mut [[f32; NV * WPANEL]; MR]) {
        let Tile { a, ldp, b, pstride, kh } = *t;
        let mut acc = [[_mm512_setzero_ps(); V]; MR];
        for j in 0..kh {
            // SAFETY: j < kh and v < V <= nv: B pair row j of panel v (32 u16) lies inside the
            // `nv` panels of `pstride >= 32 kh`; A element r ldp + j lies inside `MR * ldp`
            // since j < kh <= ldp. The bit casts are between 64-byte vector types.
            unsafe {
                let bv: [__m512bh; V] = std::array::from_fn(|v| {
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.add(v * pstride + 32 * j).cast()))
                });
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(a.add(r * ldp + j).read_unaligned() as i32));
                    for (acc_v, &bv) in acc_r.iter_mut().zip(&bv) {
                        *acc_v = _mm512_dpbf16_ps(*acc_v, av, bv);
                    }
                }
            }
        }
        for (o, acc_r) in out.iter_mut().zip(&acc) {
            for (v, &x) in acc_r.iter().enumerate() {
                // SAFETY: `o` holds NV * 16 f32 and v < V <= NV: the 16 f32 at 16 v fit.
                unsafe { _mm512_storeu_ps(o.as_mut_ptr().add(v * WPANEL), x) };
            }
        }
    }
}
