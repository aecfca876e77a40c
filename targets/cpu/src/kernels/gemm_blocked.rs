//! Our cache-blocked GEMM: the fallback that always exists, compiled per ISA by `arch`.
//! Rows of C are split over threads; each row accumulates `alpha * a[i, p] * B[p, ..]`
//! over blocks of B that stay in cache.

use super::arch;
use super::gemm::{GemmParams, GemmSpec, scale_c};

/// Our blocked product: `C = alpha op(A) op(B) + beta C`.
pub(crate) fn blocked(spec: &GemmSpec, a: &[f32], b: &[f32], c: &mut [f32], params: &GemmParams) {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let ldc = spec.ldc_eff();
    scale_c(c, m, n, ldc, spec.beta);
    // The loop streams rows of op(B); a transposed B is materialised once.
    let (b_rows, ldb): (std::borrow::Cow<'_, [f32]>, usize) = if spec.trans_b {
        let ldb = spec.ldb_eff();
        let mut t = vec![0.0f32; k * n];
        for (j, row) in b.chunks(ldb).take(n).enumerate() {
            for (p, v) in row[..k].iter().enumerate() {
                t[p * n + j] = *v;
            }
        }
        (t.into(), n)
    } else {
        (b.into(), spec.ldb_eff())
    };
    let (a_rs, a_cs) = spec.a_strides();
    let job = arch::BlockedGemm { n, k, a, a_rs, a_cs, b: &b_rows, ldb, alpha: spec.alpha, ldc };
    let c = &mut c[..spec.c_extent()];
    if params.threads <= 1 || m < 2 {
        arch::gemm_blocked(params.isa, &job, c, 0, m);
        return;
    }
    let rows_per = m.div_ceil(params.threads);
    crate::par::run(c.chunks_mut(rows_per * ldc).collect(), params.threads, |t, block| {
        let r0 = t * rows_per;
        arch::gemm_blocked(params.isa, &job, block, r0, rows_per.min(m - r0));
    });
}

/// Body of the blocked product for rows `r0..r0 + rows` of C (`c` starts at row `r0`).
/// Adds `alpha op(A) op(B)` into C. `fma` selects fused multiply-add where it is fast.
#[inline(always)]
pub(crate) fn blocked_body(fma: bool, job: &arch::BlockedGemm<'_>, c: &mut [f32], r0: usize, rows: usize) {
    const NC: usize = 512;
    const KC: usize = 256;
    let (n, k, ldb, ldc) = (job.n, job.k, job.ldb, job.ldc);
    for j0 in (0..n).step_by(NC) {
        let j1 = (j0 + NC).min(n);
        for p0 in (0..k).step_by(KC) {
            let p1 = (p0 + KC).min(k);
            for i in 0..rows {
                let crow = &mut c[i * ldc + j0..i * ldc + j1];
                let arow = (r0 + i) * job.a_rs;
                for p in p0..p1 {
                    let av = job.alpha * job.a[arow + p * job.a_cs];
                    let brow = &job.b[p * ldb + j0..p * ldb + j1];
                    if fma {
                        crow.iter_mut().zip(brow).for_each(|(cv, bv)| *cv = bv.mul_add(av, *cv));
                    } else {
                        crow.iter_mut().zip(brow).for_each(|(cv, bv)| *cv += av * bv);
                    }
                }
            }
        }
    }
}
