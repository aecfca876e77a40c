//! Scaled dot-product attention on the GEMM: `softmax(scale Q K^T + mask) V` per (batch,
//! head), over blocks of query rows so the score block stays in cache.
//!
//! Layouts: Q `[b, heads, sq, d]`, K `[b, kv_heads, sk, d]`, V `[b, kv_heads, sk, dv]`, out
//! `[b, heads, sq, dv]`; `heads` a multiple of `kv_heads` (grouped-query attention shares one
//! K/V head between `heads / kv_heads` query heads).

use rayon::prelude::*;

use super::activation::Bias;
use super::arch;
use super::error::{KernelError, check_len, checked_product, invalid};
use super::gemm::{GemmBackend, GemmParams, GemmSpec, sgemm};
use super::isa::Isa;

const KERNEL: &str = "attention";

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionSpec {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub seq_q: usize,
    pub seq_k: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    /// Multiplies Q K^T (default `1 / sqrt(head_dim)`).
    pub scale: f32,
    /// Query `i` sees keys `j <= i` (top-left aligned, as PyTorch's `is_causal`).
    pub causal: bool,
}

impl AttentionSpec {
    pub fn new(batch: usize, heads: usize, seq_q: usize, seq_k: usize, head_dim: usize) -> Self {
        AttentionSpec {
            batch,
            heads,
            kv_heads: heads,
            seq_q,
            seq_k,
            head_dim,
            head_dim_v: head_dim,
            scale: 1.0 / (head_dim.max(1) as f32).sqrt(),
            causal: false,
        }
    }
    pub fn kv_heads(mut self, kv_heads: usize) -> Self {
        self.kv_heads = kv_heads;
        self
    }
    pub fn head_dim_v(mut self, dv: usize) -> Self {
        self.head_dim_v = dv;
        self
    }
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }
    /// 2 (sq sk d + sq sk dv) per head (masked-out work counted).
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.heads) as f64
            * self.seq_q as f64
            * self.seq_k as f64
            * (self.head_dim + self.head_dim_v) as f64
    }
}

/// An additive mask over `[b, heads, sq, sk]` given by strides (0 broadcasts a dimension).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mask<'a> {
    #[default]
    None,
    Additive { data: &'a [f32], strides: [usize; 4] },
}

/// Tunable choices of attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttentionParams {
    /// Query rows per block (0 = all).
    pub q_block: usize,
    /// Transpose each K head once so the score GEMM reads a row-major B (instead of the GEMM
    /// packing a transposed K for every query block).
    pub transpose_k: bool,
    /// Threads in all, GEMM backend, ISA of the softmax.
    pub gemm: GemmParams,
}

/// Candidates; the first is the default.
pub fn attention_candidates(spec: &AttentionSpec, max_threads: usize) -> Vec<AttentionParams> {
    let threads = if spec.flops() < 2.0e6 { 1 } else { max_threads.max(1) };
    let mut out = Vec::new();
    for q_block in [64, 0, 16, 256] {
        for transpose_k in [false, true] {
            for t in [threads, 1, max_threads.max(1)] {
                let gemm = GemmParams { backend: GemmBackend::Library, threads: t, isa: Isa::best() };
                let p = AttentionParams { q_block, transpose_k, gemm };
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

pub fn attention(
    spec: &AttentionSpec,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Mask<'_>,
    out: &mut [f32],
    params: &AttentionParams,
) -> Result<(), KernelError> {
    let s = spec;
    if s.kv_heads == 0 || !s.heads.is_multiple_of(s.kv_heads) {
        return Err(invalid(KERNEL, format!("heads {} not a multiple of kv heads {}", s.heads, s.kv_heads)));
    }
    check_len(KERNEL, "Q", q.len(), checked_product(KERNEL, &[s.batch, s.heads, s.seq_q, s.head_dim])?)?;
    check_len(KERNEL, "K", k.len(), checked_product(KERNEL, &[s.batch, s.kv_heads, s.seq_k, s.head_dim])?)?;
    check_len(KERNEL, "V", v.len(), checked_product(KERNEL, &[s.batch, s.kv_heads, s.seq_k, s.head_dim_v])?)?;
    check_len(KERNEL, "out", out.len(), checked_product(KERNEL, &[s.batch, s.heads, s.seq_q, s.head_dim_v])?)?;
    if out.is_empty() {
        return Ok(());
    }
    if let (Mask::Additive { data, strides }, true) = (mask, s.seq_k > 0) {
        let dims = [s.batch, s.heads, s.seq_q, s.seq_k];
        // Index of the last element the strides reach (no dimension is 0 here).
        let last = dims.iter().zip(strides).try_fold(0usize, |acc, (d, st)| acc.checked_add((d - 1).checked_mul(st)?));
        if last.is_none_or(|l| l >= data.len()) {
            return Err(invalid(KERNEL, format!("mask of {} elements too short for strides {strides:?}", data.len())));
        }
    }
    if s.seq_k == 0 {
        out.fill(0.0);
        return Ok(());
    }
    let items = s.batch * s.heads;
    let threads = params.gemm.threads.max(1);
    let job = Job { s, q, k, v, mask, params };
    let chunks = out.chunks_mut(s.seq_q * s.head_dim_v);
    if threads > 1 && items >= threads {
        let one = params.gemm.threads(1);
        let per = items.div_ceil(threads);
        chunks.enumerate().collect::<Vec<_>>().into_par_iter().with_min_len(per)
            .try_for_each(|(i, o)| job.head(i, o, &one))
    } else {
        chunks.enumerate().try_for_each(|(i, o)| job.head(i, o, &params.gemm))
    }
}

struct Job<'a> {
    s: &'a AttentionSpec,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    mask: Mask<'a>,
    params: &'a AttentionParams,
}

impl Job<'_> {
    /// Item `i = b * heads + h` into its output block `[sq, dv]`.
    fn head(&self, i: usize, out: &mut [f32], gp: &GemmParams) -> Result<(), KernelError> {
        let s = self.s;
        let (b, h) = (i / s.heads, i % s.heads);
        let kvh = b * s.kv_heads + h / (s.heads / s.kv_heads);
        let (d, dv, sq, sk) = (s.head_dim, s.head_dim_v, s.seq_q, s.seq_k);
        let q = &self.q[i * sq * d..][..sq * d];
        let k = &self.k[kvh * sk * d..][..sk * d];
        let v = &self.v[kvh * sk * dv..][..sk * dv];
        // K^T once per head, row-major [d, sk]: the GEMM reads it in place, where a
        // transposed K would be packed again for every query block.
        let kt = if self.params.transpose_k {
            let mut kt = vec![0.0f32; d * sk];
            for (j, krow) in k.chunks_exact(d).enumerate() {
                for (t, v) in krow.iter().enumerate() {
                    kt[t * sk + j] = *v;
                }
            }
            kt
        } else {
            Vec::new()
        };
        let qb = if self.params.q_block == 0 { sq } else { self.params.q_block.min(sq) };
        let mut scores = vec![0.0f32; qb * sk];
        for q0 in (0..sq).step_by(qb) {
            let rows = qb.min(sq - q0);
            // Causal: keys after the block's last query are masked for every row; skip them.
            let kv = if s.causal { sk.min(q0 + rows) } else { sk };
            let sc = &mut scores[..rows * kv];
            if self.params.transpose_k {
                let spec = GemmSpec::new(rows, kv, d).strides(d, sk, kv).scale(s.scale, 0.0);
                sgemm(&spec, &q[q0 * d..], &kt, Bias::None, sc, gp)?;
            } else {
                let spec = GemmSpec::new(rows, kv, d).trans(false, true).strides(d, d, kv).scale(s.scale, 0.0);
                sgemm(&spec, &q[q0 * d..], k, Bias::None, sc, gp)?;
            }
            for (r, row) in sc.chunks_exact_mut(kv).enumerate() {
                let qi = q0 + r;
                if let Mask::Additive { data, strides } = self.mask {
                    let base = b * strides[0] + h * strides[1] + qi * strides[2];
                    if strides[3] == 1 {
                        row.iter_mut().zip(&data[base..base + kv]).for_each(|(x, m)| *x += m);
                    } else {
                        row.iter_mut().enumerate().for_each(|(j, x)| *x += data[base + j * strides[3]]);
                    }
                }
                if s.causal && qi + 1 < kv {
                    row[qi + 1..].fill(f32::NEG_INFINITY);
                }
            }
            arch::softmax_rows(gp.isa, sc, kv);
            let spec = GemmSpec::new(rows, dv, kv);
            sgemm(&spec, sc, v, Bias::None, &mut out[q0 * dv..][..rows * dv], gp)?;
        }
        Ok(())
    }
}
