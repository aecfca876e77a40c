//! Activations on whole AVX-512 registers, for epilogues applied to a register tile before it
//! is stored (the micro GEMM's AVX-512 tile): no second pass over C, no per-row loop.
//!
//! The formulas are `math`'s and [`Activation::apply`]'s, evaluated with fused multiply-adds,
//! with two changes that keep the same accuracy: 2^n is `vscalefps` instead of exponent bit
//! arithmetic, and GELU's `1 / (1 + p u)` is `vrcp14ps` refined by one Newton step (relative
//! error about 2^-28, below f32's rounding) instead of a division, which at 16 lanes costs more
//! than the rest of the erf together. Results differ from the scalar path by a few ulp at most
//! and keep NaN as NaN (tests/math.rs checks both against f64 definitions).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::activation::Activation;
use super::math::{EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC};

#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
fn splat(x: f32) -> __m512 {
    _mm512_set1_ps(x)
}

/// e^x per lane: +inf above ~88.72, 0 below ~-87.34, NaN for NaN (as `math::exp`).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
pub(crate) fn exp(x: __m512) -> __m512 {
    let xc = _mm512_min_ps(_mm512_max_ps(x, splat(EXP_LO)), splat(EXP_HI));
    let t = _mm512_fmadd_ps(xc, splat(LOG2E), splat(ROUND_MAGIC));
    let n = _mm512_sub_ps(t, splat(ROUND_MAGIC));
    let r = _mm512_fnmadd_ps(n, splat(LN2_LO), _mm512_fnmadd_ps(n, splat(LN2_HI), xc));
    let mut p = splat(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1] {
        p = _mm512_fmadd_ps(p, r, splat(c));
    }
    let y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), splat(1.0));
    let v = _mm512_scalef_ps(y, n);
    let v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, splat(EXP_HI)), splat(f32::INFINITY));
    let v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, splat(EXP_LO)), _mm512_setzero_ps());
    _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), x)
}

/// 1 / (1 + e^-x) (a division, as `math::sigmoid`).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
fn sigmoid(x: __m512) -> __m512 {
    let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(splat(1.0), _mm512_add_ps(splat(1.0), e))
}

/// tanh: an odd polynomial below |x| = 0.625, else `1 - 2 / (e^{2|x|} + 1)` with x's sign.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
fn tanh(x: __m512) -> __m512 {
    let a = _mm512_abs_ps(x);
    let z = _mm512_mul_ps(x, x);
    let mut p = splat(-5.704_988_7e-3);
    for c in [2.063_909e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1] {
        p = _mm512_fmadd_ps(p, z, splat(c));
    }
    let small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    let e = exp(_mm512_add_ps(a, a));
    let big = _mm512_sub_ps(splat(1.0), _mm512_div_ps(splat(2.0), _mm512_add_ps(e, splat(1.0))));
    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
    let big = _mm512_mask_sub_ps(big, neg, _mm512_setzero_ps(), big);
    _mm512_mask_mov_ps(big, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, splat(0.625)), small)
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`, through erfc(|x| / sqrt 2) (A&S 7.1.26, as
/// `math::gelu`), so that negative x lose nothing to cancellation.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
fn gelu(x: __m512) -> __m512 {
    let u = _mm512_mul_ps(_mm512_abs_ps(x), splat(std::f32::consts::FRAC_1_SQRT_2));
    let d = _mm512_fmadd_ps(u, splat(0.327_591_1), splat(1.0));
    let r = _mm512_rcp14_ps(d);
    // One Newton step: r (2 - d r).
    let t = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, splat(2.0)));
    let mut p = splat(1.061_405_4);
    for c in [-1.453_152_1, 1.421_413_8, -0.284_496_72, 0.254_829_6] {
        p = _mm512_fmadd_ps(p, t, splat(c));
    }
    let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(u, u)));
    let q = _mm512_mul_ps(_mm512_mul_ps(p, t), e);
    let h = _mm512_mul_ps(_mm512_mul_ps(splat(0.5), x), q);
    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
    _mm512_mask_mov_ps(_mm512_sub_ps(x, h), neg, h)
}

/// `x` clipped to `[lo, hi]`, NaN kept (as `activation::clip`).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
fn clip(x: __m512, lo: f32, hi: f32) -> __m512 {
    let v = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, splat(hi)), splat(hi));
    _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, splat(lo)), splat(lo))
}

/// `act` on every lane of `x`.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
pub(crate) fn apply(act: Activation, x: __m512) -> __m512 {
    let zero = _mm512_setzero_ps();
    match act {
        Activation::None => x,
        Activation::Relu => _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero), zero),
        Activation::Clip { min, max } => clip(x, min, max),
        Activation::LeakyRelu { alpha } => {
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero);
            _mm512_mask_mul_ps(x, neg, x, splat(alpha))
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::HardSigmoid { alpha, beta } => clip(_mm512_fmadd_ps(x, splat(alpha), splat(beta)), 0.0, 1.0),
        Activation::HardSwish => _mm512_mul_ps(x, clip(_mm512_fmadd_ps(x, splat(1.0 / 6.0), splat(0.5)), 0.0, 1.0)),
        Activation::Tanh => tanh(x),
        Activation::Gelu => gelu(x),
        Activation::GeluTanh => {
            const C: f32 = 0.797_884_6; // sqrt(2/pi)
            let x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
            let inner = _mm512_mul_ps(splat(C), _mm512_fmadd_ps(x3, splat(0.044_715), x));
            let half_x = _mm512_mul_ps(splat(0.5), x);
            _mm512_fmadd_ps(half_x, tanh(inner), half_x)
        }
        Activation::Silu => _mm512_mul_ps(x, sigmoid(x)),
    }
}

/// `act` over a slice, 16 lanes at a time (the tail masked); false without AVX-512 (nothing
/// is changed then). For tests.
#[cfg(test)]
pub(crate) fn apply_slice(act: Activation, xs: &mut [f32]) -> bool {
    if !super::isa::Isa::Avx512.is_available() {
        return false;
    }
    // SAFETY: AVX-512 (f/vl/bw/dq, with avx2 and fma) was detected just above.
    unsafe { apply_slice_avx512(act, xs) };
    true
}

#[cfg(test)]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn apply_slice_avx512(act: Activation, xs: &mut [f32]) {
    for chunk in xs.chunks_mut(16) {
        let mask: __mmask16 = ((1u32 << chunk.len()) - 1) as u16;
        let p = chunk.as_mut_ptr();
        // SAFETY: the masked load and store touch the chunk's `len` lanes only; masked-off
        // lanes never fault.
        unsafe {
            let v = apply(act, _mm512_maskz_loadu_ps(mask, p));
            _mm512_mask_storeu_ps(p, mask, v);
        }
    }
}
