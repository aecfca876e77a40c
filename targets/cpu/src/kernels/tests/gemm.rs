use super::util::{assert_close, rand_vec, rng};
use crate::kernels::*;
use rand::Rng;

/// Naive f64 reference of the whole GEMM contract.
pub(super) fn naive(spec: &GemmSpec, a: &[f32], b: &[f32], bias: Bias<'_>, c: &mut [f32]) {
    let (lda, ldb, ldc) = (spec.lda_eff(), spec.ldb_eff(), spec.ldc_eff());
    for i in 0..spec.m {
        for j in 0..spec.n {
            let mut s = 0.0f64;
            for p in 0..spec.k {
                let av = if spec.trans_a { a[p * lda + i] } else { a[i * lda + p] };
                let bv = if spec.trans_b { b[j * ldb + p] } else { b[p * ldb + j] };
                s += f64::from(av) * f64::from(bv);
            }
            let old = if spec.beta == 0.0 { 0.0 } else { f64::from(spec.beta) * f64::from(c[i * ldc + j]) };
            let mut v = (f64::from(spec.alpha) * s + old) as f32;
            v += match bias {
                Bias::None => 0.0,
                Bias::PerRow(bv) => bv[i],
                Bias::PerCol(bv) => bv[j],
            };
            c[i * ldc + j] = spec.act.apply(v);
        }
    }
}

fn all_params() -> Vec<GemmParams> {
    let mut v = gemm_candidates(&GemmSpec::new(64, 64, 64), 2);
    v.push(GemmParams { backend: GemmBackend::Blocked, threads: 2, isa: Isa::Scalar });
    v
}

#[test]
fn random_shapes_all_backends() {
    let mut r = rng(1);
    let dims = [1usize, 2, 3, 7, 16, 17, 31, 33, 64, 65, 130];
    for case in 0..120 {
        let m = dims[r.random_range(0..dims.len())];
        let n = dims[r.random_range(0..dims.len())];
        let k = dims[r.random_range(0..dims.len())];
        let (ta, tb) = (r.random_bool(0.5), r.random_bool(0.5));
        let pad = if r.random_bool(0.3) { 3 } else { 0 };
        let mut spec = GemmSpec::new(m, n, k).trans(ta, tb);
        if pad > 0 {
            let (_, ac) = spec.a_dims();
            let (_, bc) = spec.b_dims();
            spec = spec.strides(ac + pad, bc + pad, n + pad);
        }
        if r.random_bool(0.5) {
            spec = spec.scale(r.random_range(-2.0..2.0), [0.0, 1.0, 0.5][r.random_range(0..3)]);
        }
        let acts = Activation::all();
        spec = spec.act(acts[r.random_range(0..acts.len())]);
        let (ar, _) = spec.a_dims();
        let (br, _) = spec.b_dims();
        let a = rand_vec(&mut r, ar * spec.lda_eff());
        let b = rand_vec(&mut r, br * spec.ldb_eff());
        let c0 = rand_vec(&mut r, m * spec.ldc_eff());
        let row_bias = rand_vec(&mut r, m);
        let col_bias = rand_vec(&mut r, n);
        let bias = match case % 3 {
            0 => Bias::None,
            1 => Bias::PerRow(&row_bias),
            _ => Bias::PerCol(&col_bias),
        };
        let mut want = c0.clone();
        naive(&spec, &a, &b, bias, &mut want);
        for p in all_params() {
            let mut got = c0.clone();
            sgemm(&spec, &a, &b, bias, &mut got, &p).unwrap();
            assert_close(&format!("case {case} {spec:?} {p:?}"), &got, &want, 1e-4, 1e-4);
        }
    }
}

#[test]
fn zero_k_and_empty() {
    let spec = GemmSpec::new(3, 4, 0).scale(1.0, 0.5);
    let mut c = vec![2.0f32; 12];
    sgemm(&spec, &[], &[], Bias::None, &mut c, &GemmParams::default()).unwrap();
    assert!(c.iter().all(|&v| v == 1.0));
    let spec = GemmSpec::new(0, 4, 5);
    sgemm(&spec, &[], &[0.0; 20], Bias::None, &mut [], &GemmParams::default()).unwrap();
}

#[test]
fn rejects_short_buffers() {
    let spec = GemmSpec::new(4, 4, 4);
    let mut c = vec![0.0; 16];
    assert!(sgemm(&spec, &[0.0; 15], &[0.0; 16], Bias::None, &mut c, &GemmParams::default()).is_err());
    assert!(sgemm(&spec, &[0.0; 16], &[0.0; 16], Bias::PerCol(&[0.0; 3]), &mut c, &GemmParams::default()).is_err());
    let mut short = vec![0.0; 15];
    assert!(sgemm(&spec, &[0.0; 16], &[0.0; 16], Bias::None, &mut short, &GemmParams::default()).is_err());
}

#[test]
fn batched_with_broadcast() {
    let mut r = rng(2);
    let (m, n, k, count) = (5, 7, 9, 6);
    let spec = GemmSpec::new(m, n, k).trans(false, true);
    let a = rand_vec(&mut r, count * m * k);
    let b = rand_vec(&mut r, n * k); // shared by every item
    let batch = Batch { count, stride_a: m * k, stride_b: 0, stride_c: m * n };
    let mut want = vec![0.0; count * m * n];
    for i in 0..count {
        naive(&spec, &a[i * m * k..], &b, Bias::None, &mut want[i * m * n..]);
    }
    for p in all_params() {
        let mut got = vec![f32::NAN; count * m * n];
        sgemm_batched(&spec, batch, &a, &b, Bias::None, &mut got, &p).unwrap();
        assert_close(&format!("{p:?}"), &got, &want, 1e-5, 1e-5);
    }
    let overlapping = Batch { stride_c: m * n - 1, ..batch };
    let mut c = vec![0.0; count * m * n];
    assert!(sgemm_batched(&spec, overlapping, &a, &b, Bias::None, &mut c, &GemmParams::default()).is_err());
}

#[test]
fn packed_b_matches_unpacked() {
    let mut r = rng(8);
    for &(m, n, k, tb) in &[(5, 7, 9, true), (33, 17, 65, false), (1, 1, 1, true), (64, 96, 40, true)] {
        let spec = GemmSpec::new(m, n, k).trans(false, tb).act(Activation::Relu);
        let a = rand_vec(&mut r, m * k);
        let b = rand_vec(&mut r, n * k);
        let bias = rand_vec(&mut r, n);
        let mut want = vec![0.0; m * n];
        naive(&spec, &a, &b, Bias::PerCol(&bias), &mut want);
        for layout in packed_layout_candidates() {
            let packed = pack_b(&b, k, n, tb, 0, layout).unwrap();
            let plain = GemmSpec { trans_b: false, ..spec };
            for p in all_params() {
                let mut got = vec![0.0; m * n];
                sgemm_packed(&plain, &a, &packed, Bias::PerCol(&bias), &mut got, &p).unwrap();
                assert_close(&format!("{m}x{n}x{k} {p:?}"), &got, &want, 1e-5, 1e-5);
            }
            let mut scratch = vec![0.0; m * n];
            assert!(sgemm_packed(&spec, &a, &packed, Bias::None, &mut scratch, &GemmParams::default()).is_err() || !tb);
            assert!(
                sgemm_packed(&GemmSpec::new(m, n + 1, k), &a, &packed, Bias::None, &mut vec![0.0; m * (n + 1)], &GemmParams::default())
                    .is_err()
            );
        }
    }
}
