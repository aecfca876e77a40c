//! The microkernel backend: every ISA, 1 and 2 threads, unpacked and pre-packed B (every panel
//! width), edge sizes, strides, transposes, alpha/beta, every bias form and activation.

use super::gemm::naive;
use super::util::{assert_close, rand_vec, rng};
use crate::kernels::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

fn micro_params() -> Vec<GemmParams> {
    let mut v = Vec::new();
    for isa in Isa::available() {
        for threads in [1, 2] {
            v.push(GemmParams { backend: GemmBackend::Micro, threads, isa });
        }
    }
    v
}

const WIDTHS: [usize; 4] = [16, 32, 48, 64];

/// One random case: checks the unpacked entry (every ISA and thread count) and, when B is
/// dense and C not accumulated with strides, the packed entry for every panel width.
fn check_case(r: &mut ChaCha8Rng, what: &str, spec: GemmSpec, bias_kind: usize, tol: f32) {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let (ar, _) = spec.a_dims();
    let (br, _) = spec.b_dims();
    let a = rand_vec(r, ar * spec.lda_eff());
    let b = rand_vec(r, br * spec.ldb_eff());
    let mut c0 = rand_vec(r, m * spec.ldc_eff());
    if spec.beta == 0.0 {
        c0.iter_mut().step_by(3).for_each(|x| *x = f32::NAN); // beta 0 must not read C
    }
    let (row_bias, col_bias) = (rand_vec(r, m), rand_vec(r, n));
    let bias = match bias_kind % 3 {
        0 => Bias::None,
        1 => Bias::PerRow(&row_bias),
        _ => Bias::PerCol(&col_bias),
    };
    let mut want = c0.clone();
    naive(&spec, &a, &b, bias, &mut want);
    let packed: Vec<PackedB> =
        WIDTHS.iter().map(|&nr| pack_b(&b, k, n, spec.trans_b, spec.ldb, PackedLayout::Panel { nr }).unwrap()).collect();
    let plain = GemmSpec { trans_b: false, ldb: 0, ..spec };
    for p in micro_params() {
        let mut got = c0.clone();
        sgemm(&spec, &a, &b, bias, &mut got, &p).unwrap();
        assert_close(&format!("{what} {spec:?} {p:?} unpacked"), &got, &want, tol, tol);
        for pk in &packed {
            let mut got = c0.clone();
            sgemm_packed(&plain, &a, pk, bias, &mut got, &p).unwrap();
            assert_close(&format!("{what} {spec:?} {p:?} {:?}", pk.layout()), &got, &want, tol, tol);
        }
    }
}

#[test]
fn random_edges_every_isa_threads_and_layout() {
    let mut r = rng(21);
    let dims = [1usize, 2, 3, 5, 7, 8, 13, 16, 17, 31, 47, 48, 49, 64, 97, 130];
    let acts = Activation::all();
    for case in 0..160 {
        let pick = |r: &mut ChaCha8Rng| dims[r.random_range(0..dims.len())];
        let (m, n, k) = (pick(&mut r), pick(&mut r), pick(&mut r));
        let mut spec = GemmSpec::new(m, n, k).trans(r.random_bool(0.5), r.random_bool(0.5));
        if r.random_bool(0.3) {
            let (_, ac) = spec.a_dims();
            let (_, bc) = spec.b_dims();
            spec = spec.strides(ac + 3, bc + 5, n + 2);
        }
        if r.random_bool(0.6) {
            spec = spec.scale(r.random_range(-2.0..2.0), [0.0, 1.0, 0.5, -1.5][r.random_range(0..4)]);
        }
        spec = spec.act(acts[case % acts.len()]);
        check_case(&mut r, &format!("case {case}"), spec, case / acts.len(), 1e-4);
    }
}

/// Sizes past the k, m and n blocks (several k blocks accumulate: k 1100 on AVX2 and the
/// portable tile, k 1700 on AVX-512 too; row blocks; per-call packed column blocks) and past
/// the thread split.
#[test]
fn crosses_blocks() {
    let mut r = rng(22);
    for (i, (m, n, k)) in [(3, 8300, 256), (2100, 20, 128), (37, 150, 1100), (21, 100, 1700), (130, 390, 390)].into_iter().enumerate() {
        let spec = GemmSpec::new(m, n, k).scale(0.75, 0.5).act(Activation::Relu);
        check_case(&mut r, "blocks", spec, i, 2e-3);
    }
}

#[test]
fn zero_k_scales_then_bias_and_act() {
    let bias = [1.0f32, -2.0, 3.0];
    for p in micro_params() {
        let spec = GemmSpec::new(2, 3, 0).scale(1.0, 0.5).act(Activation::Relu);
        let mut c = vec![2.0f32; 6];
        sgemm(&spec, &[], &[], Bias::PerCol(&bias), &mut c, &p).unwrap();
        assert_eq!(c, [2.0, 0.0, 4.0, 2.0, 0.0, 4.0]);
        let pk = pack_b(&[], 0, 3, false, 0, PackedLayout::Panel { nr: 16 }).unwrap();
        let mut c = vec![f32::NAN; 6];
        sgemm_packed(&spec.scale(1.0, 0.0), &[], &pk, Bias::PerCol(&bias), &mut c, &p).unwrap();
        assert_eq!(c, [1.0, 0.0, 3.0, 1.0, 0.0, 3.0]);
    }
}

#[test]
fn bad_sizes_are_errors() {
    let b = vec![0.0f32; 12];
    assert!(pack_b(&b, 3, 4, false, 0, PackedLayout::Panel { nr: 20 }).is_err());
    assert!(pack_b(&b, 3, 5, false, 0, PackedLayout::Panel { nr: 16 }).is_err());
    assert!(pack_b(&b, 4, 4, true, 5, PackedLayout::Panel { nr: 16 }).is_err());
    let pk = pack_b(&b, 3, 4, false, 0, PackedLayout::Panel { nr: 32 }).unwrap();
    let p = GemmParams { backend: GemmBackend::Micro, threads: 2, isa: Isa::best() };
    let spec = GemmSpec::new(2, 4, 3);
    let mut c = vec![0.0f32; 8];
    assert!(sgemm_packed(&spec, &[0.0; 5], &pk, Bias::None, &mut c, &p).is_err());
    assert!(sgemm_packed(&spec, &[0.0; 6], &pk, Bias::None, &mut c[..7], &p).is_err());
    assert!(sgemm_packed(&spec, &[0.0; 6], &pk, Bias::PerRow(&[0.0; 3]), &mut c, &p).is_err());
    assert!(sgemm_packed(&GemmSpec::new(2, 4, 4), &[0.0; 8], &pk, Bias::None, &mut c, &p).is_err());
    assert!(sgemm_packed(&spec.strides(0, 4, 0), &[0.0; 6], &pk, Bias::None, &mut c, &p).is_err());
    assert!(sgemm(&spec, &[0.0; 6], &b[..11], Bias::None, &mut c, &p).is_err());
    sgemm_packed(&spec, &[0.0; 6], &pk, Bias::None, &mut c, &p).unwrap();
}

#[test]
fn batched_and_layout_helpers() {
    let mut r = rng(23);
    let (m, n, k, count) = (9, 50, 20, 5);
    let spec = GemmSpec::new(m, n, k).trans(true, false).act(Activation::Gelu);
    let a = rand_vec(&mut r, count * m * k);
    let b = rand_vec(&mut r, k * n);
    let batch = Batch { count, stride_a: m * k, stride_b: 0, stride_c: m * n };
    let mut want = vec![0.0; count * m * n];
    for i in 0..count {
        naive(&spec, &a[i * m * k..], &b, Bias::None, &mut want[i * m * n..]);
    }
    for p in micro_params() {
        let mut got = vec![f32::NAN; count * m * n];
        sgemm_batched(&spec, batch, &a, &b, Bias::None, &mut got, &p).unwrap();
        assert_close(&format!("{p:?}"), &got, &want, 1e-4, 1e-4);
        assert!(matches!(packed_layout_for(&p, n), PackedLayout::Panel { .. }));
    }
    let lib = GemmParams::default();
    assert_eq!(packed_layout_for(&GemmParams { backend: GemmBackend::Library, ..lib }, n), PackedLayout::RowMajor);
    let widths = |n| packed_layout_for(&GemmParams { backend: GemmBackend::Micro, isa: Isa::Avx512, ..lib }, n);
    if Isa::Avx512.is_available() {
        assert_eq!(widths(1536), PackedLayout::Panel { nr: 48 });
        assert_eq!(widths(1024), PackedLayout::Panel { nr: 64 });
        assert_eq!(widths(1000), PackedLayout::Panel { nr: 48 });
    }
    assert!(gemm_candidates(&spec, 2).iter().any(|p| p.backend == GemmBackend::Micro));
}
