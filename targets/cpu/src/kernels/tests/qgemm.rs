//! The int8 GEMM against a naive i64 product (exact equality of the compensated sums) and
//! the on-the-fly quantization against the reference's rounding, bit for bit.

use super::util::{assert_close, rng};
use crate::kernels::{
    Activation, QEpilogue, QGemmParams, QInts, QIsa, QuantParams, QuantizedA, qgemm, qgemm_candidates, qgemm_i32, qpack_b, quantize_slice,
};
use rand::Rng;

/// Weights of one test: i8 or u8 values (as i32) with zero points (empty, 1 or n).
struct W {
    signed: bool,
    vals: Vec<i32>,
    zps: Vec<i32>,
}

/// Every level that runs here, AMX (not in `available`) included when present.
fn isas() -> Vec<QIsa> {
    let mut v = QIsa::available();
    if QIsa::Amx.is_available() {
        v.push(QIsa::Amx);
    }
    v
}

fn weights(r: &mut impl Rng, k: usize, n: usize, signed: bool, zp_kind: usize) -> W {
    let (lo, hi) = if signed { (-128, 127) } else { (0, 255) };
    let vals = (0..k * n).map(|_| r.random_range(lo..=hi)).collect();
    let zps = match zp_kind {
        0 => vec![],
        1 => vec![r.random_range(lo..=hi)],
        _ => (0..n).map(|_| r.random_range(lo..=hi)).collect(),
    };
    W { signed, vals, zps }
}

fn quantized_a(r: &mut impl Rng, m: usize, k: usize, za: i32) -> (QuantizedA, Vec<i32>) {
    let vals: Vec<i32> = (0..m * k).map(|_| r.random_range(0..=255)).collect();
    let mut a = QuantizedA::default();
    let p = QuantParams { scale: 0.5, zero_point: za, signed: false };
    a.gather(m, k, &p, |row, dst| {
        for (d, &v) in dst.iter_mut().zip(&vals[row * k..]) {
            *d = v as u8;
        }
    })
    .unwrap();
    (a, vals)
}

fn naive(a: &[i32], za: i32, w: &W, m: usize, n: usize, k: usize) -> Vec<i32> {
    let zb = |j: usize| i64::from(w.zps.get(j).or(w.zps.first()).copied().unwrap_or(0));
    let mut c = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: i64 = (0..k).map(|p| (i64::from(a[i * k + p]) - i64::from(za)) * (i64::from(w.vals[p * n + j]) - zb(j))).sum();
            c[i * n + j] = s as i32;
        }
    }
    c
}

fn pack(w: &W, k: usize, n: usize) -> crate::kernels::QPackedB {
    if w.signed {
        let v: Vec<i8> = w.vals.iter().map(|&x| x as i8).collect();
        qpack_b(QInts::I8(&v), k, n, n, 1, &w.zps).unwrap()
    } else {
        let v: Vec<u8> = w.vals.iter().map(|&x| x as u8).collect();
        qpack_b(QInts::U8(&v), k, n, n, 1, &w.zps).unwrap()
    }
}

#[test]
fn qgemm_i32_is_exact_for_every_isa_tile_and_thread_count() {
    let mut r = rng(7);
    let shapes = [
        (1, 1, 1),
        (1, 17, 3),
        (2, 16, 4),
        (7, 13, 5),
        (13, 50, 33),
        (25, 97, 67),
        (37, 64, 130),
        (64, 48, 384),
        (3, 200, 7),
        (70, 50, 260),
    ];
    for (si, &(m, n, k)) in shapes.iter().enumerate() {
        for (signed, zp_kind) in [(true, 0), (true, 1), (true, 2), (false, 0), (false, 1), (false, 2)] {
            let w = weights(&mut r, k, n, signed, zp_kind);
            let za = if si % 2 == 0 { r.random_range(0..=255) } else { 0 };
            let (a, av) = quantized_a(&mut r, m, k, za);
            let want = naive(&av, za, &w, m, n, k);
            let b = pack(&w, k, n);
            for isa in isas() {
                for &(mr, nv) in isa.tiles() {
                    for nc in [0, 1, 24] {
                        for threads in [1, 2] {
                            let p = QGemmParams { isa, mr, nv, nc, threads };
                            let mut c = vec![0i32; m * n];
                            qgemm_i32(&a, &b, &mut c, &p).unwrap();
                            assert_eq!(c, want, "{m}x{n}x{k} signed {signed} zp {zp_kind} {p:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_candidate_is_exact_and_the_float_epilogue_scales_and_biases() {
    let mut r = rng(8);
    let (m, n, k) = (19, 40, 21);
    let w = weights(&mut r, k, n, true, 2);
    let (a, av) = quantized_a(&mut r, m, k, 3);
    let want = naive(&av, 3, &w, m, n, k);
    let b = pack(&w, k, n);
    let scale: Vec<f32> = (0..n).map(|j| 0.01 + j as f32 * 1e-3).collect();
    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.1 - 1.0).collect();
    let wantf: Vec<f32> = want.iter().enumerate().map(|(i, &v)| (v as f32 * scale[i % n] + bias[i % n]).max(0.0)).collect();
    for p in qgemm_candidates(m, n, k, 2) {
        let mut c = vec![0i32; m * n];
        qgemm_i32(&a, &b, &mut c, &p).unwrap();
        assert_eq!(c, want, "{p:?}");
        let mut cf = vec![0f32; m * n];
        let epi = QEpilogue { scale: &scale, bias: Some(&bias), act: Activation::Relu };
        qgemm(&a, &b, &epi, &mut cf, &p).unwrap();
        assert_close(&format!("{p:?}"), &cf, &wantf, 0.0, 0.0);
    }
}

#[test]
fn mismatched_sizes_are_errors() {
    let w = W { signed: true, vals: vec![1; 12], zps: vec![] };
    let b = pack(&w, 3, 4);
    let (a, _) = quantized_a(&mut rng(1), 2, 5, 0);
    assert!(qgemm_i32(&a, &b, &mut [0; 8], &QGemmParams::default()).is_err());
    assert!(qpack_b(QInts::I8(&[1; 11]), 3, 4, 4, 1, &[]).is_err());
    assert!(qpack_b(QInts::I8(&[1; 12]), 3, 4, 4, 1, &[0, 0]).is_err());
}

/// The reference's QuantizeLinear of one f32 (crates/reference, `quantize_value`): the f64
/// quotient rounded to f32, ties to even, plus zp, saturated, then `as` the integer type.
fn reference_q(x: f32, scale: f32, zp: i32, signed: bool) -> i32 {
    let (lo, hi) = if signed { (-128.0, 127.0) } else { (0.0, 255.0) };
    let q = ((x as f64 / scale as f64) as f32 as f64).round_ties_even() + zp as f64;
    let q = q.clamp(lo, hi);
    if signed { i32::from(q as i8) } else { i32::from(q as u8) }
}

fn test_values(r: &mut impl Rng, scale: f32) -> Vec<f32> {
    let mut xs: Vec<f32> = (0..4000).map(|_| r.random_range(-300.0f32..300.0) * scale).collect();
    // Exact ties, their neighbours, saturating and special values.
    for j in -300..300 {
        let t = (j as f32 + 0.5) * scale;
        xs.extend([t, f32::from_bits(t.to_bits() + 1), f32::from_bits(t.to_bits().saturating_sub(1))]);
    }
    xs.extend([0.0, -0.0, 1e30, -1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, 1e-40]);
    xs
}

#[test]
fn static_quantization_matches_the_reference_bit_for_bit() {
    let mut r = rng(9);
    for &scale in &[1.0f32, 0.5, 0.1, 0.003_921_568_6, 0.0173, 3.7e-3, 1e-6] {
        let xs = test_values(&mut r, scale);
        for (zp, signed) in [(0, false), (128, false), (255, false), (17, false), (0, true), (-128, true), (127, true), (-5, true)] {
            let p = QuantParams { scale, zero_point: zp, signed };
            let off = if signed { 128 } else { 0 };
            let want: Vec<i32> = xs.iter().map(|&x| reference_q(x, scale, zp, signed) + off).collect();
            for isa in isas() {
                let mut got = vec![0u8; xs.len()];
                let sum = quantize_slice(&xs, &p, isa, &mut got).unwrap();
                let got: Vec<i32> = got.iter().map(|&v| i32::from(v)).collect();
                assert_eq!(got, want, "scale {scale} zp {zp} signed {signed} {isa:?}");
                assert_eq!(sum, want.iter().sum::<i32>());
            }
        }
    }
}

#[test]
fn quantization_matches_the_reference_for_random_scales_and_near_ties() {
    let mut r = rng(11);
    for _ in 0..300 {
        let scale = 10f32.powf(r.random_range(-5.0f32..1.5));
        let mut xs: Vec<f32> = Vec::new();
        for _ in 0..2000 {
            let n = r.random_range(-400i32..400) as f32;
            // Quotients just around half-integers (within a few ulps), and anywhere.
            let t = (n + 0.5) * scale;
            let ulps = r.random_range(-6i32..=6);
            let near = f32::from_bits((t.to_bits() as i64 + i64::from(ulps)).max(0) as u32);
            xs.extend([near, r.random_range(-1.0f32..1.0) * 400.0 * scale]);
        }
        let zp = r.random_range(-128..=127);
        let p = QuantParams { scale, zero_point: zp, signed: true };
        let want: Vec<i32> = xs.iter().map(|&x| reference_q(x, scale, zp, true) + 128).collect();
        for isa in isas() {
            let mut got = vec![0u8; xs.len()];
            quantize_slice(&xs, &p, isa, &mut got).unwrap();
            let got: Vec<i32> = got.iter().map(|&v| i32::from(v)).collect();
            assert_eq!(got, want, "scale {scale} zp {zp} {isa:?}");
        }
    }
}

/// The reference's DynamicQuantizeLinear parameters.
fn reference_dynamic(xs: &[f32]) -> (f32, i32) {
    let lo = xs.iter().copied().fold(0.0f32, f32::min);
    let hi = xs.iter().copied().fold(0.0f32, f32::max);
    let scale = (hi - lo) / 255.0;
    if scale == 0.0 { (0.0, 0) } else { (scale, (-lo / scale).round_ties_even().clamp(0.0, 255.0) as i32) }
}

#[test]
fn dynamic_quantization_matches_the_reference_bit_for_bit() {
    let mut r = rng(10);
    let mut cases: Vec<Vec<f32>> = vec![vec![0.0; 37], vec![], vec![2.5; 5], vec![-1.0, -3.0], vec![0.0, f32::NAN, 0.0]];
    for n in [1, 15, 16, 17, 100, 1000] {
        cases.push((0..n).map(|_| r.random_range(-2.0f32..5.0)).collect());
        cases.push((0..n).map(|_| r.random_range(0.5f32..5.0)).collect());
        cases.push((0..n).map(|_| r.random_range(-7.0f32..-0.1)).collect());
    }
    for xs in &cases {
        let (scale, zp) = reference_dynamic(xs);
        let want: Vec<i32> = xs.iter().map(|&x| if scale == 0.0 { 0 } else { reference_q(x, scale, zp, false) }).collect();
        for isa in isas() {
            let p = QuantParams::dynamic(xs, isa);
            assert_eq!((p.scale.to_bits(), p.zero_point, p.signed), (scale.to_bits(), zp, false), "{isa:?} {xs:?}");
            let mut got = vec![0u8; xs.len()];
            quantize_slice(xs, &p, isa, &mut got).unwrap();
            assert_eq!(got.iter().map(|&v| i32::from(v)).collect::<Vec<_>>(), want, "{isa:?}");
        }
    }
}

#[test]
fn quantized_rows_are_padded_and_summed() {
    let xs: Vec<f32> = (0..3 * 5).map(|i| i as f32).collect();
    let mut a = QuantizedA::default();
    let p = QuantParams { scale: 1.0, zero_point: -3, signed: true };
    a.quantize(&xs, 3, 5, &p, QIsa::Scalar, 1).unwrap();
    assert_eq!(a.row(1).unwrap(), &[130, 131, 132, 133, 134]);
    assert_eq!(a.zero_point(), 125);
    assert!(a.quantize(&xs, 4, 5, &p, QIsa::Scalar, 2).is_err());
    // Large enough for the threaded path: the same bytes and sums as one thread.
    let (rows, k) = (1100, 1001);
    let xs: Vec<f32> = (0..rows * k).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
    let (mut one, mut two) = (QuantizedA::default(), QuantizedA::default());
    one.quantize(&xs, rows, k, &p, QIsa::Avx512Vnni, 1).unwrap();
    two.quantize(&xs, rows, k, &p, QIsa::Avx512Vnni, 2).unwrap();
    assert_eq!((one.data, one.row_sums), (two.data, two.row_sums));
}
