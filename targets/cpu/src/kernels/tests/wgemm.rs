//! The weight-only GEMM on every weight type, compute, path, ISA and thread count against a
//! naive f64 product of the dequantized weights, within 1e-5 of the largest magnitude (the
//! dequantization and the bf16 rounding of X are exact; only the order of the sums differs).

use super::util::{rand_vec, rng};
use crate::kernels::{Activation, Isa, WCompute, WEpilogue, WGemmParams, WPacked, WPath, WScales, WSource, wgemm, wpack};
use kiln_tensor::{bf16, f16};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    F16,
    Bf16,
    I4,
    U4,
    I8,
    U8,
}

/// Packed weights and the same weights dequantized (row-major `[k, n]`).
fn weights(r: &mut ChaCha8Rng, ty: Ty, (k, n): (usize, usize), block: usize, zp: bool) -> (WPacked, Vec<f32>) {
    let floats = rand_vec(r, k * n);
    match ty {
        Ty::F16 => {
            let h: Vec<f16> = floats.iter().map(|&v| f16::from_f32(v)).collect();
            let bits: Vec<u16> = h.iter().map(|v| v.to_bits()).collect();
            (wpack(WSource::F16(&bits), k, n, None).expect("pack"), h.iter().map(|v| v.to_f32()).collect())
        }
        Ty::Bf16 => {
            let h: Vec<bf16> = floats.iter().map(|&v| bf16::from_f32(v)).collect();
            let bits: Vec<u16> = h.iter().map(|v| v.to_bits()).collect();
            (wpack(WSource::Bf16(&bits), k, n, None).expect("pack"), h.iter().map(|v| v.to_f32()).collect())
        }
        _ => {
            let (lo, hi) = match ty {
                Ty::I4 => (-8, 7),
                Ty::U4 => (0, 15),
                Ty::I8 => (-128, 127),
                _ => (0, 255),
            };
            let q: Vec<i32> = (0..k * n).map(|_| r.random_range(lo..=hi)).collect();
            let groups = if block > 0 { k.div_ceil(block) } else { 1 };
            let scale: Vec<f32> = (0..groups * n).map(|_| r.random_range(0.01f32..0.05)).collect();
            let zero: Vec<i32> = if zp { (0..scale.len()).map(|_| r.random_range(lo..=hi)).collect() } else { Vec::new() };
            let deq = (0..k * n)
                .map(|i| {
                    let g = (i / n).checked_div(block).map_or(i % n, |gi| gi * n + i % n);
                    (q[i] - zero.get(g).copied().unwrap_or(0)) as f32 * scale[g]
                })
                .collect();
            let (i8s, u8s): (Vec<i8>, Vec<u8>) = (q.iter().map(|&v| v as i8).collect(), q.iter().map(|&v| v as u8).collect());
            let src = match ty {
                Ty::I4 => WSource::I4(&i8s),
                Ty::U4 => WSource::U4(&u8s),
                Ty::I8 => WSource::I8(&i8s),
                _ => WSource::U8(&u8s),
            };
            let s = WScales { scale: &scale, zero_point: &zero, block };
            (wpack(src, k, n, Some(s)).expect("pack"), deq)
        }
    }
}

fn naive(x: &[f32], w: &[f32], (m, k, n): (usize, usize, usize), bias: &[f32], act: Activation) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|p| f64::from(x[i * k + p]) * f64::from(w[p * n + j])).sum();
            c[i * n + j] = act.apply(s as f32 + bias[j]);
        }
    }
    c
}

fn check(what: &str, got: &[f32], want: &[f32]) {
    let max = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-6);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * max, "{what}: element {i}: got {g}, want {w} (max {max})");
    }
}

#[test]
fn every_type_path_and_isa_matches_a_naive_product() {
    let mut r = rng(41);
    let act = Activation::Gelu;
    for ty in [Ty::F16, Ty::Bf16, Ty::I4, Ty::U4, Ty::I8, Ty::U8] {
        // k not a multiple of the group (nor of 2), n not a multiple of the panels or tiles.
        for (k, n, block, zp) in [(75, 70, 32, true), (75, 70, 32, false), (130, 33, 0, true), (9, 100, 4, true)] {
            let float = matches!(ty, Ty::F16 | Ty::Bf16);
            if float && (zp || block > 0) && (k, n) != (75, 70) {
                continue;
            }
            let (packed, deq) = weights(&mut r, ty, (k, n), if float { 0 } else { block }, zp && !float);
            let bias = rand_vec(&mut r, n);
            for m in [1, 7, 64, 200] {
                let x = rand_vec(&mut r, m * k);
                for compute in [WCompute::F32, WCompute::Bf16] {
                    let xc: Vec<f32> = match compute {
                        WCompute::F32 => x.clone(),
                        WCompute::Bf16 => x.iter().map(|&v| bf16::from_f32(v).to_f32()).collect(),
                    };
                    let want = naive(&xc, &deq, (m, k, n), &bias, act);
                    for path in [WPath::Gemv, WPath::Gemm, WPath::Bf16Dot, WPath::Amx] {
                        for isa in Isa::available() {
                            for threads in [1, 2] {
                                let params = WGemmParams { path, threads, isa };
                                let mut c = vec![f32::NAN; m * n];
                                let epi = WEpilogue { bias: Some(&bias), act };
                                wgemm(&x, m, &packed, compute, &epi, &mut c, &params)
                                    .unwrap_or_else(|e| panic!("{ty:?} k={k} n={n} m={m} {compute:?} {params:?}: {e}"));
                                check(&format!("{ty:?} k={k} n={n} block={block} zp={zp} m={m} {compute:?} {params:?}"), &c, &want);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn bf16_rounding_matches_the_reference_cast() {
    // Random values (the three lowest mantissa bits decide some ties), ties, NaN, infinity.
    let mut r = rng(7);
    let mut xs: Vec<f32> = (0..20000).map(|_| f32::from_bits(r.random::<u32>() & 0xbfff_ffff)).collect();
    xs.extend([f32::from_bits(0x3f80_8001), f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000), f32::INFINITY, f32::NAN, -0.0]);
    for &x in &xs {
        // The reference Cast's conversion (kiln_tensor's Elem), and IEEE round-to-nearest-even.
        let want = <bf16 as kiln_tensor::Elem>::from_f64(f64::from(x)).to_bits();
        assert!(want == bf16::from_f32(x).to_bits() || x.is_nan(), "{x:e}: the reference's bf16 is not round-to-nearest-even");
        let got = crate::kernels::wpack::f32_to_bf16(x);
        assert!(got == want || (x.is_nan() && got & 0x7fc0 == 0x7fc0), "{x:e} ({:#x}): got {got:#x}, want {want:#x}", x.to_bits());
    }
}

#[test]
fn packed_weights_stay_low_precision() {
    let mut r = rng(3);
    let (k, n) = (256, 128);
    let (w4, _) = weights(&mut r, Ty::I4, (k, n), 32, true);
    let (w16, _) = weights(&mut r, Ty::F16, (k, n), 0, false);
    // int4: half a byte per weight plus an f32 scale and zero point per 32-row group.
    assert_eq!(w4.bytes(), k * n / 2 + 2 * 4 * (k / 32) * n);
    assert_eq!(w16.bytes(), 2 * k * n);
}
