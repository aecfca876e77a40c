//! Scaled dot-product attention on the GEMM: `softmax(scale Q K^T + mask) V` per (batch,
//! head), over blocks of query rows so the score block stays in cache.
//!
//! Layouts: Q `[b, heads, sq, d]`, K `[b, kv_heads, sk, d]`, V `[b, kv_heads, sk, dv]`, out
//! `[b, heads, sq, dv]`; `heads` a multiple of `kv_heads` (grouped-query attention shares one
//! K/V head between `heads / kv_heads` query heads). [`attention_in`] reads Q, K, V through
//! strides instead ([`Layout`]: heads side by side in the columns of `[b, s, h*d]`, or column
//! ranges of one packed `[b, s, 3*h*d]` tensor) and may write the output `[b, sq, heads*dv]`.

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
        2.0 * (self.batch * self.heads) as f64 * self.seq_q as f64 * self.seq_k as f64 * (self.head_dim + self.head_dim_v) as f64
    }
}

/// An additive mask over `[b, heads, sq, sk]` given by strides (0 broadcasts a dimension).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mask<'a> {
    #[default]
    None,
    Additive {
        data: &'a [f32],
        strides: [usize; 4],
    },
}

/// Where an operand's heads lie: element `(b, h, row, col)` at
/// `offset + b * batch + h * head + row * row + col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strides {
    pub offset: usize,
    pub batch: usize,
    pub head: usize,
    pub row: usize,
}

impl Strides {
    /// Heads one after another: `[b, heads, rows, cols]`.
    pub fn heads_first(heads: usize, rows: usize, cols: usize) -> Strides {
        Strides { offset: 0, batch: heads * rows * cols, head: rows * cols, row: cols }
    }
    /// Heads side by side: head `h` in columns `offset + h * cols ..` of `[b, rows, width]`.
    pub fn in_columns(offset: usize, rows: usize, cols: usize, width: usize) -> Strides {
        Strides { offset, batch: rows * width, head: cols, row: width }
    }
    fn at(&self, b: usize, h: usize) -> usize {
        self.offset + b * self.batch + h * self.head
    }
    /// Elements the operand must hold (None on overflow).
    fn extent(&self, batch: usize, heads: usize, rows: usize, cols: usize) -> Option<usize> {
        if batch == 0 || heads == 0 || rows == 0 || cols == 0 {
            return Some(0);
        }
        let last = [(batch, self.batch), (heads, self.head), (rows, self.row)]
            .iter()
            .try_fold(self.offset + cols, |acc, &(n, st)| acc.checked_add((n - 1).checked_mul(st)?))?;
        Some(last)
    }
}

/// How Q, K, V are read and the output written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub q: Strides,
    pub k: Strides,
    pub v: Strides,
    /// Output `[b, sq, heads*dv]` (true) or `[b, heads, sq, dv]`.
    pub out_in_columns: bool,
}

impl Layout {
    /// Every operand `[b, heads, s, d]`.
    pub fn heads_first(s: &AttentionSpec) -> Layout {
        Layout {
            q: Strides::heads_first(s.heads, s.seq_q, s.head_dim),
            k: Strides::heads_first(s.kv_heads, s.seq_k, s.head_dim),
            v: Strides::heads_first(s.kv_heads, s.seq_k, s.head_dim_v),
            out_in_columns: false,
        }
    }
    /// Q `[b, sq, heads*d]`, K `[b, sk, kv_heads*d]`, V `[b, sk, kv_heads*dv]`, output
    /// `[b, sq, heads*dv]`.
    pub fn in_columns(s: &AttentionSpec) -> Layout {
        Layout {
            q: Strides::in_columns(0, s.seq_q, s.head_dim, s.heads * s.head_dim),
            k: Strides::in_columns(0, s.seq_k, s.head_dim, s.kv_heads * s.head_dim),
            v: Strides::in_columns(0, s.seq_k, s.head_dim_v, s.kv_heads * s.head_dim_v),
            out_in_columns: true,
        }
    }
    /// Q, K, V as the column ranges of one `[b, s, heads*(2d + dv)]` tensor (sq = sk).
    pub fn packed(s: &AttentionSpec) -> Layout {
        let (qw, vw) = (s.heads * s.head_dim, s.heads * s.head_dim_v);
        let width = 2 * qw + vw;
        Layout {
            q: Strides::in_columns(0, s.seq_q, s.head_dim, width),
            k: Strides::in_columns(qw, s.seq_k, s.head_dim, width),
            v: Strides::in_columns(2 * qw, s.seq_k, s.head_dim_v, width),
            out_in_columns: true,
        }
    }
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

/// Strides of an additive mask broadcast over the scores `[b, h, n, m]` (0 where it repeats).
pub fn mask_strides(mask: &[usize], scores: [usize; 4]) -> Result<[usize; 4], String> {
    if mask.len() > 4 {
        return Err(format!("mask of shape {mask:?} has more than 4 dimensions"));
    }
    let padded: Vec<usize> = std::iter::repeat_n(1, 4 - mask.len()).chain(mask.iter().copied()).collect();
    let mut strides = [0usize; 4];
    let mut s = 1;
    for i in (0..4).rev() {
        if padded[i] != 1 && padded[i] != scores[i] {
            return Err(format!("mask of shape {mask:?} does not broadcast to the scores {scores:?}"));
        }
        strides[i] = if padded[i] == 1 { 0 } else { s };
        s *= padded[i];
    }
    Ok(strides)
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
    attention_in(&Layout::heads_first(spec), spec, q, k, v, mask, out, params)
}

/// [`attention`] with Q, K, V read (and the output written) as `layout` says.
#[allow(clippy::too_many_arguments)]
pub fn attention_in(
    layout: &Layout,
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
    let reach = |st: &Strides, heads, rows, cols, what: &str| {
        st.extent(s.batch, heads, rows, cols).ok_or_else(|| invalid(KERNEL, format!("{what} strides overflow")))
    };
    let need_q = reach(&layout.q, s.heads, s.seq_q, s.head_dim, "Q")?;
    check_at_least(q.len(), need_q, "Q")?;
    check_at_least(k.len(), reach(&layout.k, s.kv_heads, s.seq_k, s.head_dim, "K")?, "K")?;
    check_at_least(v.len(), reach(&layout.v, s.kv_heads, s.seq_k, s.head_dim_v, "V")?, "V")?;
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
    let threads = params.gemm.threads.max(1);
    let one = params.gemm.threads(1);
    let job = Job { s, layout, q, k, v, mask, params };
    let qb = if params.q_block == 0 { s.seq_q } else { params.q_block.min(s.seq_q) };
    if layout.out_in_columns {
        // Work items: (batch, query block), each every head into its rows `[rows, heads*dv]`.
        let ldo = s.heads * s.head_dim_v;
        let items: Vec<(usize, usize, &mut [f32])> = out
            .chunks_mut(s.seq_q * ldo)
            .enumerate()
            .flat_map(|(b, ob)| ob.chunks_mut(qb * ldo).enumerate().map(move |(j, o)| (b, j * qb, o)))
            .collect();
        if threads > 1 && items.len() >= threads {
            crate::par::try_run(items, threads, |_, (b, q0, o)| job.rows(b, q0, o, &one))
        } else {
            items.into_iter().try_for_each(|(b, q0, o)| job.rows(b, q0, o, &params.gemm))
        }
    } else {
        let items = s.batch * s.heads;
        let chunks = out.chunks_mut(s.seq_q * s.head_dim_v);
        if threads > 1 && items >= threads {
            crate::par::try_run(chunks.collect(), threads, |i, o| job.head(i, o, &one))
        } else {
            chunks.enumerate().try_for_each(|(i, o)| job.head(i, o, &params.gemm))
        }
    }
}

fn check_at_least(len: usize, need: usize, what: &str) -> Result<(), KernelError> {
    if len < need {
        return Err(invalid(KERNEL, format!("{what} holds {len} elements, its strides reach {need}")));
    }
    Ok(())
}

struct Job<'a> {
    s: &'a AttentionSpec,
    layout: &'a Layout,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    mask: Mask<'a>,
    params: &'a AttentionParams,
}

impl Job<'_> {
    fn q_block(&self) -> usize {
        if self.params.q_block == 0 { self.s.seq_q } else { self.params.q_block.min(self.s.seq_q) }
    }

    /// Item `i = b * heads + h` into its output block `[sq, dv]` (heads-first output).
    fn head(&self, i: usize, out: &mut [f32], gp: &GemmParams) -> Result<(), KernelError> {
        let s = self.s;
        let (b, h) = (i / s.heads, i % s.heads);
        let kt = self.k_transposed(b, h);
        let qb = self.q_block();
        let mut scores = vec![0.0f32; qb * s.seq_k];
        for q0 in (0..s.seq_q).step_by(qb) {
            let rows = qb.min(s.seq_q - q0);
            self.block(b, h, q0, rows, &mut out[q0 * s.head_dim_v..], s.head_dim_v, &mut scores, kt.as_deref(), gp)?;
        }
        Ok(())
    }

    /// Query rows `q0..` of batch `b`, every head, into `out` `[rows, heads*dv]`.
    fn rows(&self, b: usize, q0: usize, out: &mut [f32], gp: &GemmParams) -> Result<(), KernelError> {
        let s = self.s;
        let ldo = s.heads * s.head_dim_v;
        let rows = out.len() / ldo;
        let mut scores = vec![0.0f32; rows * s.seq_k];
        for h in 0..s.heads {
            let kt = self.k_transposed(b, h);
            self.block(b, h, q0, rows, &mut out[h * s.head_dim_v..], ldo, &mut scores, kt.as_deref(), gp)?;
        }
        Ok(())
    }

    /// The K head of query head `h`, transposed once to row-major `[d, sk]` when the params
    /// say so: the GEMM reads it in place, where a transposed K would be packed again for
    /// every query block.
    fn k_transposed(&self, b: usize, h: usize) -> Option<Vec<f32>> {
        if !self.params.transpose_k {
            return None;
        }
        let s = self.s;
        let (d, sk) = (s.head_dim, s.seq_k);
        let (base, ld) = (self.layout.k.at(b, h / (s.heads / s.kv_heads)), self.layout.k.row);
        let mut kt = vec![0.0f32; d * sk];
        for j in 0..sk {
            for (t, v) in self.k[base + j * ld..][..d].iter().enumerate() {
                kt[t * sk + j] = *v;
            }
        }
        Some(kt)
    }

    /// `rows` query rows from `q0` of head `(b, h)` into `out` (row stride `ldc`).
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        b: usize,
        h: usize,
        q0: usize,
        rows: usize,
        out: &mut [f32],
        ldc: usize,
        scores: &mut [f32],
        kt: Option<&[f32]>,
        gp: &GemmParams,
    ) -> Result<(), KernelError> {
        let (s, l) = (self.s, self.layout);
        let kvh = h / (s.heads / s.kv_heads);
        let (d, dv, sk) = (s.head_dim, s.head_dim_v, s.seq_k);
        let q = &self.q[l.q.at(b, h) + q0 * l.q.row..];
        // Causal: keys after the block's last query are masked for every row; skip them.
        let kv = if s.causal { sk.min(q0 + rows) } else { sk };
        let sc = &mut scores[..rows * kv];
        if let Some(kt) = kt {
            let spec = GemmSpec::new(rows, kv, d).strides(l.q.row, sk, kv).scale(s.scale, 0.0);
            sgemm(&spec, q, kt, Bias::None, sc, gp)?;
        } else {
            let spec = GemmSpec::new(rows, kv, d).trans(false, true).strides(l.q.row, l.k.row, kv).scale(s.scale, 0.0);
            sgemm(&spec, q, &self.k[l.k.at(b, kvh)..], Bias::None, sc, gp)?;
        }
        // AVX-512: the mask added inside the softmax's first pass (one pass fewer).
        #[cfg(target_arch = "x86_64")]
        let fused = !s.causal
            && gp.isa.effective() == super::isa::Isa::Avx512
            && match self.mask {
                Mask::None => super::arch_softmax::rows(sc, kv, None),
                Mask::Additive { data, strides } if strides[3] == 1 => {
                    let offset = b * strides[0] + h * strides[1] + q0 * strides[2];
                    super::arch_softmax::rows(sc, kv, Some(super::arch_softmax::MaskRows { data, offset, row_stride: strides[2] }))
                }
                Mask::Additive { .. } => false,
            };
        #[cfg(not(target_arch = "x86_64"))]
        let fused = false;
        if !fused {
            self.mask_and_softmax(b, h, q0, kv, sc, gp);
        }
        let spec = GemmSpec::new(rows, dv, kv).strides(kv, l.v.row, ldc);
        sgemm(&spec, sc, &self.v[l.v.at(b, kvh)..], Bias::None, out, gp)
    }

    /// The portable mask add (and causal cut) then softmax of a block's scores.
    fn mask_and_softmax(&self, b: usize, h: usize, q0: usize, kv: usize, sc: &mut [f32], gp: &GemmParams) {
        let s = self.s;
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
    }
}
