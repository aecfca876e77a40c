//! Branch-free f32 approximations of exp, log, tanh, erfc that the compiler vectorises.
//!
//! libm calls stop auto-vectorisation, so the kernels use these instead. Each is
//! `#[inline(always)]` so it is compiled with the target features of the kernel that calls it.
//! Errors (measured in the tests against f64): exp, log and tanh within a few ulp; erfc-based
//! gelu within 2e-7 absolute. The polynomial coefficients are the classic Cephes ones.

pub(crate) const LOG2E: f32 = std::f32::consts::LOG2_E;
pub(crate) const LN2_HI: f32 = 0.693_359_4;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it rounds to the nearest integer, kept in the low mantissa bits.
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;
pub(crate) const EXP_HI: f32 = 88.722_84;
pub(crate) const EXP_LO: f32 = -87.336_55;

/// e^x. Returns +inf above ~88.72, 0 below ~-87.34, NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_fma(false, x)
}

/// [`exp`] with fused multiply-adds where `fma` (results may differ from [`exp`] by an ulp).
#[inline(always)]
pub fn exp_fma(fma: bool, x: f32) -> f32 {
    let xc = x.clamp(EXP_LO, EXP_HI);
    let t = fmadd(fma, xc, LOG2E, ROUND_MAGIC);
    let n_bits = t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()) as i32;
    let n = t - ROUND_MAGIC;
    let r = fmadd(fma, -n, LN2_LO, fmadd(fma, -n, LN2_HI, xc));
    let mut p = 1.987_569_1e-4_f32;
    p = fmadd(fma, p, r, 1.398_199_9e-3);
    p = fmadd(fma, p, r, 8.333_452e-3);
    p = fmadd(fma, p, r, 4.166_579_6e-2);
    p = fmadd(fma, p, r, 1.666_666_5e-1);
    p = fmadd(fma, p, r, 5e-1);
    let y = fmadd(fma, p * r, r, r) + 1.0;
    // 2^n as a float; n is in [-126, 128] after the clamp, so split it to avoid overflow.
    let half = n_bits >> 1;
    let s1 = f32::from_bits(((half + 127) as u32) << 23);
    let s2 = f32::from_bits(((n_bits - half + 127) as u32) << 23);
    let v = y * s1 * s2;
    if x > EXP_HI {
        f32::INFINITY
    } else if x < EXP_LO {
        0.0
    } else {
        v
    }
}

/// Natural log. NaN below 0, -inf at 0, +inf at +inf. Subnormal inputs are treated as 0.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= i32::from(small);
    m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut p = 7.037_683_6e-2_f32;
    p = p * m - 1.151_461e-1;
    p = p * m + 1.167_699_9e-1;
    p = p * m - 1.242_014_1e-1;
    p = p * m + 1.424_932_3e-1;
    p = p * m - 1.666_805_8e-1;
    p = p * m + 2.000_071_4e-1;
    p = p * m - 2.499_999_4e-1;
    p = p * m + 3.333_333e-1;
    let ef = e as f32;
    let mut y = p * m * z;
    y += ef * LN2_LO;
    y -= 0.5 * z;
    let v = m + y + ef * LN2_HI;
    if x.is_nan() || x < 0.0 {
        f32::NAN
    } else if x < f32::MIN_POSITIVE {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        f32::INFINITY
    } else {
        v
    }
}

/// Hyperbolic tangent.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: odd polynomial (no cancellation near 0).
    let z = x * x;
    let mut p = -5.704_988_7e-3_f32;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    // Large |x|: 1 - 2 / (e^{2|x|} + 1), with the sign of x.
    let big = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if a < 0.625 { small } else { big }
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// erfc(u) for u >= 0 (Abramowitz & Stegun 7.1.26: |erf error| < 1.5e-7).
#[inline(always)]
pub fn erfc_nonneg(u: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * u);
    let mut p = 1.061_405_4_f32;
    p = p * t - 1.453_152_1;
    p = p * t + 1.421_413_8;
    p = p * t - 0.284_496_72;
    p = p * t + 0.254_829_6;
    p * t * exp(-u * u)
}

/// x * Phi(x) with the exact (erf) definition: 0.5 x (1 + erf(x / sqrt 2)).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    let q = erfc_nonneg(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
    // erf(|x|/√2) = 1 - q; for x < 0, 1 + erf(x/√2) = q (no cancellation).
    if x < 0.0 { 0.5 * x * q } else { x - 0.5 * x * q }
}

/// The tanh approximation of gelu: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    0.5 * x * (1.0 + tanh(C * (x + 0.044_715 * x * x * x)))
}

/// `a * b + c`, fused when `fma` (pass a constant: the branch folds away).
#[inline(always)]
pub fn fmadd(fma: bool, a: f32, b: f32, c: f32) -> f32 {
    if fma { a.mul_add(b, c) } else { a * b + c }
}

/// Sum with 16 independent lanes (vectorisable; the order differs from a sequential sum).
#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = xs.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += *v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Maximum with 16 lanes; NaN if any element is NaN, -inf for an empty slice.
#[inline(always)]
pub fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let mut nan = [false; 16];
    let chunks = xs.chunks_exact(16);
    let mut m = f32::NEG_INFINITY;
    let mut any_nan = false;
    for v in chunks.remainder() {
        m = if *v > m { *v } else { m };
        any_nan |= v.is_nan();
    }
    for c in chunks {
        for ((a, n), v) in acc.iter_mut().zip(nan.iter_mut()).zip(c) {
            *a = if *v > *a { *v } else { *a };
            *n |= v.is_nan();
        }
    }
    for (a, n) in acc.iter().zip(nan) {
        m = if *a > m { *a } else { m };
        any_nan |= n;
    }
    if any_nan { f32::NAN } else { m }
}
