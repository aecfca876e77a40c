//! `unsafe` of the activation quantization: the AVX-512 / AVX2 builds of the quantization
//! and min / max loops (vector loads and stores through raw pointers, `#[target_feature]`
//! functions called after detection). The portable bodies are safe code in `qpack.rs`.
//!
//! Why `unsafe` is unavoidable here: `_mm512_loadu_ps` and friends take raw pointers (each
//! loop reads and writes whole vectors below `n`, the SAFETY comments say so), and
//! `#[target_feature]` functions are called only after [`QIsa::effective`] detected the
//! features.
#![allow(unsafe_code)]

use super::qgemm::QIsa;
use super::qpack::{minmax_body, quantize_body};

/// The quantization loop (see `qpack::quantize_body`) compiled for the best vector level.
pub(crate) fn quantize(isa: QIsa, x: &[f32], out: &mut [u8], p: [f32; 4]) -> i32 {
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `effective` detected AVX-512 F/BW/VL/DQ (AMX requires it too).
        QIsa::Avx512Vnni | QIsa::Amx => unsafe { x86::quantize_512(x, out, p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `effective` detected AVX2 (every level above it includes it).
        QIsa::AvxVnni | QIsa::Avx2 => unsafe { x86::quantize_256(x, out, p) },
        _ => quantize_body(x, out, p),
    }
}

/// `(min(0, min x), max(0, max x))` compiled for the best vector level.
pub(crate) fn minmax(isa: QIsa, x: &[f32]) -> (f32, f32) {
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `quantize`.
        QIsa::Avx512Vnni | QIsa::Amx => unsafe { x86::minmax_512(x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `quantize`.
        QIsa::AvxVnni | QIsa::Avx2 => unsafe { x86::minmax_256(x) },
        _ => minmax_body(x),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{minmax_body, quantize_body};
    use std::arch::x86_64::*;

    /// `quantize_body` on 16 lanes: true division, round to nearest even, zero point,
    /// saturation, NaN lanes to the integer 0, the u8 sum.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    pub(super) fn quantize_512(x: &[f32], out: &mut [u8], p: [f32; 4]) -> i32 {
        let n = x.len().min(out.len());
        let [scale, zp, lo, hi] = p;
        let (vs, vz, vlo, vhi) = (_mm512_set1_ps(scale), _mm512_set1_ps(zp), _mm512_set1_ps(lo), _mm512_set1_ps(hi));
        let off = _mm512_set1_epi32(if lo < 0.0 { 128 } else { 0 });
        let mut sum = _mm512_setzero_si512();
        let body = n / 16 * 16;
        for i in (0..body).step_by(16) {
            // SAFETY: i + 16 <= n <= x.len().
            let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) };
            let q = _mm512_add_ps(_mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_div_ps(v, vs)), vz);
            let ok = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(q, q);
            let qi = _mm512_maskz_cvtps_epi32(ok, _mm512_min_ps(_mm512_max_ps(q, vlo), vhi));
            let u = _mm512_add_epi32(qi, off);
            sum = _mm512_add_epi32(sum, u);
            // SAFETY: i + 16 <= n <= out.len().
            unsafe { _mm_storeu_si128(out.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi8(u)) };
        }
        _mm512_reduce_add_epi32(sum) + quantize_body(&x[body..n], &mut out[body..n], p)
    }

    /// `quantize_512` on 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn quantize_256(x: &[f32], out: &mut [u8], p: [f32; 4]) -> i32 {
        let n = x.len().min(out.len());
        let [scale, zp, lo, hi] = p;
        let (vs, vz, vlo, vhi) = (_mm256_set1_ps(scale), _mm256_set1_ps(zp), _mm256_set1_ps(lo), _mm256_set1_ps(hi));
        let off = _mm256_set1_epi32(if lo < 0.0 { 128 } else { 0 });
        let mut sum = _mm256_setzero_si256();
        let body = n / 8 * 8;
        for i in (0..body).step_by(8) {
            // SAFETY: i + 8 <= n <= x.len().
            let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) };
            let q = _mm256_add_ps(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_div_ps(v, vs)), vz);
            let ok = _mm256_cmp_ps::<_CMP_ORD_Q>(q, q);
            let q = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(q, vlo), vhi), ok);
            let u = _mm256_add_epi32(_mm256_cvtps_epi32(q), off);
            sum = _mm256_add_epi32(sum, u);
            let w = _mm_packus_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256::<1>(u));
            // SAFETY: i + 8 <= n <= out.len(); the store writes 8 bytes.
            unsafe { _mm_storel_epi64(out.as_mut_ptr().add(i).cast(), _mm_packus_epi16(w, w)) };
        }
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` holds exactly 8 i32.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sum) };
        lanes.iter().sum::<i32>() + quantize_body(&x[body..n], &mut out[body..n], p)
    }

    /// `minmax_body` on 16 lanes (`vminps x, acc` keeps acc for a NaN x, as `f32::min`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    pub(super) fn minmax_512(x: &[f32]) -> (f32, f32) {
        let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let body = x.len() / 16 * 16;
        for i in (0..body).step_by(16) {
            // SAFETY: i + 16 <= x.len().
            let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) };
            lo = _mm512_min_ps(v, lo);
            hi = _mm512_max_ps(v, hi);
        }
        let (tlo, thi) = minmax_body(&x[body..]);
        (_mm512_reduce_min_ps(lo).min(tlo), _mm512_reduce_max_ps(hi).max(thi))
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn minmax_256(x: &[f32]) -> (f32, f32) {
        minmax_body(x)
    }
}
