use super::util::{assert_close, rand_vec, rng};
use crate::kernels::*;
use rand::Rng;

#[allow(clippy::too_many_arguments)]
fn naive(s: &AttentionSpec, q: &[f32], k: &[f32], v: &[f32], mask: Option<(&[f32], [usize; 4])>) -> Vec<f32> {
    let (d, dv, sq, sk) = (s.head_dim, s.head_dim_v, s.seq_q, s.seq_k);
    let mut out = vec![0.0; s.batch * s.heads * sq * dv];
    for b in 0..s.batch {
        for h in 0..s.heads {
            let kvh = b * s.kv_heads + h / (s.heads / s.kv_heads);
            let i = b * s.heads + h;
            for qi in 0..sq {
                let mut sc: Vec<f64> = (0..sk)
                    .map(|j| {
                        let dot: f64 = (0..d).map(|t| f64::from(q[(i * sq + qi) * d + t]) * f64::from(k[(kvh * sk + j) * d + t])).sum();
                        let mut x = dot * f64::from(s.scale);
                        if let Some((m, st)) = mask {
                            x += f64::from(m[b * st[0] + h * st[1] + qi * st[2] + j * st[3]]);
                        }
                        if s.causal && j > qi { f64::NEG_INFINITY } else { x }
                    })
                    .collect();
                let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                sc.iter_mut().for_each(|x| *x = (*x - mx).exp());
                let sum: f64 = sc.iter().sum();
                for t in 0..dv {
                    let acc: f64 = (0..sk).map(|j| sc[j] / sum * f64::from(v[(kvh * sk + j) * dv + t])).sum();
                    out[(i * sq + qi) * dv + t] = acc as f32;
                }
            }
        }
    }
    out
}

#[test]
fn attention_matches_naive() {
    let mut r = rng(7);
    for case in 0..90 {
        let kv_heads = r.random_range(1..=2);
        let heads = kv_heads * r.random_range(1..=3);
        let sq = [1, 3, 17, 70][r.random_range(0..4)];
        let sk = if r.random_bool(0.5) { sq } else { [1, 5, 33][r.random_range(0..3)] };
        let causal = sq == sk && r.random_bool(0.5);
        // Head sizes of real encoders (32, 64) beside odd ones.
        let s = AttentionSpec::new(r.random_range(1..=2), heads, sq, sk, [1, 8, 19, 32][r.random_range(0..4)])
            .kv_heads(kv_heads)
            .head_dim_v([1, 8, 19, 16, 32, 64][r.random_range(0..6)])
            .causal(causal);
        let q = rand_vec(&mut r, s.batch * heads * sq * s.head_dim);
        let k = rand_vec(&mut r, s.batch * kv_heads * sk * s.head_dim);
        let v = rand_vec(&mut r, s.batch * kv_heads * sk * s.head_dim_v);
        // Key-padding style mask [b, 1, 1, sk] or a full [sq, sk] mask shared by all.
        let (mdata, strides) =
            if r.random_bool(0.5) { (rand_vec(&mut r, s.batch * sk), [sk, 0, 0, 1]) } else { (rand_vec(&mut r, sq * sk), [0, 0, sk, 1]) };
        let use_mask = r.random_bool(0.6);
        let want = naive(&s, &q, &k, &v, use_mask.then_some((&mdata[..], strides)));
        let mask = if use_mask { Mask::Additive { data: &mdata, strides } } else { Mask::None };
        let mut cands = attention_candidates(&s, 2);
        cands.push(AttentionParams {
            q_block: 1,
            transpose_k: true,
            gemm: GemmParams { backend: GemmBackend::Blocked, threads: 2, isa: Isa::Scalar },
        });
        for p in cands {
            let mut out = vec![f32::NAN; want.len()];
            attention(&s, &q, &k, &v, mask, &mut out, &p).unwrap();
            assert_close(&format!("case {case} {s:?} {p:?}"), &out, &want, 1e-4, 1e-5);
        }
    }
    let s = AttentionSpec::new(1, 2, 2, 2, 2);
    let short_mask = Mask::Additive { data: &[0.0; 3], strides: [0, 0, 2, 1] };
    let mut out = vec![0.0; 8];
    assert!(attention(&s, &[0.0; 8], &[0.0; 8], &[0.0; 8], short_mask, &mut out, &attention_candidates(&s, 1)[0]).is_err());
    assert!(attention(&s.kv_heads(3), &[0.0; 8], &[0.0; 8], &[0.0; 8], Mask::None, &mut out, &attention_candidates(&s, 1)[0]).is_err());
}

/// `[b, h, s, d]` -> `[b, s, h*d]`.
fn to_columns(x: &[f32], h: usize, s: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for (i, v) in x.iter().enumerate() {
        let (bi, hi, si, di) = (i / (h * s * d), i / (s * d) % h, i / d % s, i % d);
        out[(bi * s + si) * h * d + hi * d + di] = *v;
    }
    out
}

#[test]
fn attention_reads_heads_in_columns_and_packed() {
    let mut r = rng(11);
    for case in 0..40 {
        let heads = r.random_range(1..=3);
        let sq = [1, 17, 70][r.random_range(0..3)];
        let packed = r.random_bool(0.5);
        let sk = if packed { sq } else { [1, 5, 33][r.random_range(0..3)] };
        let d = [1, 8, 19, 32][r.random_range(0..4)];
        let dv = if packed { d } else { [1, 8, 32, 48][r.random_range(0..4)] };
        let s = AttentionSpec::new(r.random_range(1..=2), heads, sq, sk, d).head_dim_v(dv);
        let q = rand_vec(&mut r, s.batch * heads * sq * d);
        let k = rand_vec(&mut r, s.batch * heads * sk * d);
        let v = rand_vec(&mut r, s.batch * heads * sk * dv);
        let mdata = rand_vec(&mut r, s.batch * sk);
        let mask = Mask::Additive { data: &mdata, strides: [sk, 0, 0, 1] };
        let want = to_columns(&naive(&s, &q, &k, &v, Some((&mdata, [sk, 0, 0, 1]))), heads, sq, dv);
        let (qc, kc, vc) = (to_columns(&q, heads, sq, d), to_columns(&k, heads, sk, d), to_columns(&v, heads, sk, dv));
        let qkv: Vec<f32> = (0..if packed { s.batch * sq } else { 0 })
            .flat_map(|row| [&qc, &kc, &vc].into_iter().flat_map(move |x| x[row * heads * d..][..heads * d].to_vec()))
            .collect();
        let layout = if packed { Layout::packed(&s) } else { Layout::in_columns(&s) };
        let mut cands = attention_candidates(&s, 2);
        cands.push(AttentionParams {
            q_block: 16,
            transpose_k: true,
            gemm: GemmParams { backend: GemmBackend::Blocked, threads: 2, isa: Isa::Scalar },
        });
        for p in cands {
            let mut out = vec![f32::NAN; want.len()];
            if packed {
                attention_in(&layout, &s, &qkv, &qkv, &qkv, mask, &mut out, &p).unwrap();
            } else {
                attention_in(&layout, &s, &qc, &kc, &vc, mask, &mut out, &p).unwrap();
            }
            assert_close(&format!("case {case} packed {packed} {s:?} {p:?}"), &out, &want, 1e-4, 1e-5);
        }
    }
    let s = AttentionSpec::new(1, 2, 3, 3, 4);
    let mut out = vec![0.0; 24];
    let short = vec![0.0; 3 * 24 - 1];
    assert!(attention_in(&Layout::packed(&s), &s, &short, &short, &short, Mask::None, &mut out, &attention_candidates(&s, 1)[0]).is_err());
}

#[test]
fn cpu_features_fingerprint() {
    let f = cpu_features();
    assert!(f.cores >= 1);
    assert!(f.cache_key().starts_with(std::env::consts::ARCH));
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(f.avx512f, is_x86_feature_detected!("avx512f"));
        assert!(!f.vendor.is_empty());
    }
    assert_eq!(Isa::available().first().copied(), Some(Isa::best()));
    assert!(Isa::Avx512.effective().is_available());
}

#[test]
fn attention_edge_sizes() {
    // No keys: the output is zeros (a weighted sum over nothing); a mask is not read.
    let s = AttentionSpec::new(1, 1, 2, 0, 3);
    let mut out = vec![f32::NAN; 6];
    let mask = Mask::Additive { data: &[], strides: [0, 0, 0, 1] };
    attention(&s, &[1.0; 6], &[], &[], mask, &mut out, &attention_candidates(&s, 1)[0]).unwrap();
    assert_eq!(out, vec![0.0; 6]);
    // Batched GEMM with k == 0 and broadcast strides.
    let spec = GemmSpec::new(2, 2, 0);
    let mut c = vec![f32::NAN; 8];
    let batch = Batch { count: 2, stride_a: 5, stride_b: 7, stride_c: 4 };
    sgemm_batched(&spec, batch, &[], &[], Bias::PerCol(&[1.0, 2.0]), &mut c, &GemmParams::default()).unwrap();
    assert_eq!(c, vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
}
