//! f32 GEMM: `C = alpha * op(A) * op(B) + beta * C (+ bias), then an activation`.
//!
//! Row-major storage with leading dimensions. Three backends: the `gemm` crate (packed
//! AVX-512/AVX2/NEON microkernels, dispatched by the crate at run time), our microkernel
//! backend (`micro.rs`: BLIS-style blocking, register tiles per [`Isa`], B pre-packed once
//! into panels or packed per call, bias and activation fused per tile) and a simple blocked
//! loop compiled per [`Isa`] (the plainest fallback).

use super::activation::{Activation, Bias};
use super::arch;
use super::error::{KernelError, check_len, check_matrix, invalid};
use super::isa::Isa;
use super::micro;

const KERNEL: &str = "gemm";

/// The shape and scalars of one GEMM. `A` is stored `[m, k]` (`[k, m]` when `trans_a`), `B`
/// `[k, n]` (`[n, k]` when `trans_b`), `C` `[m, n]`; each row-major with a row stride (`ld*`,
/// 0 meaning dense).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmSpec {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
    /// Applied after bias in the epilogue.
    pub act: Activation,
}

impl GemmSpec {
    /// `C = A * B` with dense row-major operands.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        GemmSpec { m, n, k, trans_a: false, trans_b: false, lda: 0, ldb: 0, ldc: 0, alpha: 1.0, beta: 0.0, act: Activation::None }
    }

    pub fn trans(mut self, trans_a: bool, trans_b: bool) -> Self {
        self.trans_a = trans_a;
        self.trans_b = trans_b;
        self
    }

    pub fn scale(mut self, alpha: f32, beta: f32) -> Self {
        self.alpha = alpha;
        self.beta = beta;
        self
    }

    pub fn act(mut self, act: Activation) -> Self {
        self.act = act;
        self
    }

    /// Row strides (0 = dense).
    pub fn strides(mut self, lda: usize, ldb: usize, ldc: usize) -> Self {
        self.lda = lda;
        self.ldb = ldb;
        self.ldc = ldc;
        self
    }

    /// Floating-point operations of the product (2 m n k).
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// Stored (rows, cols) of A.
    pub(crate) fn a_dims(&self) -> (usize, usize) {
        if self.trans_a { (self.k, self.m) } else { (self.m, self.k) }
    }

    /// Stored (rows, cols) of B.
    pub(crate) fn b_dims(&self) -> (usize, usize) {
        if self.trans_b { (self.n, self.k) } else { (self.k, self.n) }
    }

    pub(crate) fn lda_eff(&self) -> usize {
        if self.lda == 0 { self.a_dims().1 } else { self.lda }
    }

    pub(crate) fn ldb_eff(&self) -> usize {
        if self.ldb == 0 { self.b_dims().1 } else { self.ldb }
    }

    pub(crate) fn ldc_eff(&self) -> usize {
        if self.ldc == 0 { self.n } else { self.ldc }
    }

    /// (row stride, column stride) of op(A) as an `m x k` matrix.
    pub(crate) fn a_strides(&self) -> (usize, usize) {
        if self.trans_a { (1, self.lda_eff()) } else { (self.lda_eff(), 1) }
    }

    /// (row stride, column stride) of op(B) as a `k x n` matrix.
    pub(crate) fn b_strides(&self) -> (usize, usize) {
        if self.trans_b { (1, self.ldb_eff()) } else { (self.ldb_eff(), 1) }
    }

    /// Elements C spans: `(m - 1) * ldc + n`.
    pub(crate) fn c_extent(&self) -> usize {
        if self.m == 0 || self.n == 0 { 0 } else { (self.m - 1) * self.ldc_eff() + self.n }
    }

    pub(crate) fn check(&self, a: usize, b: usize, c: usize, bias: Bias<'_>) -> Result<(), KernelError> {
        let (ar, ac) = self.a_dims();
        let (br, bc) = self.b_dims();
        check_matrix(KERNEL, "A", a, ar, ac, self.lda_eff())?;
        check_matrix(KERNEL, "B", b, br, bc, self.ldb_eff())?;
        check_matrix(KERNEL, "C", c, self.m, self.n, self.ldc_eff())?;
        match bias {
            Bias::None => Ok(()),
            Bias::PerRow(v) => check_len(KERNEL, "row bias", v.len(), self.m),
            Bias::PerCol(v) => check_len(KERNEL, "column bias", v.len(), self.n),
        }
    }
}

/// Which implementation computes the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmBackend {
    /// The `gemm` crate (packs both operands internally; chooses its own ISA at run time).
    Library,
    /// Our cache-blocked loop, compiled for the `isa` of [`GemmParams`].
    Blocked,
    /// Our packed microkernels (`isa` of [`GemmParams`]): reads a B pre-packed with
    /// [`PackedLayout::Panel`](super::PackedLayout::Panel) as it is, packs any other B per call.
    Micro,
}

/// Tunable choices of a GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmParams {
    pub backend: GemmBackend,
    /// Threads to split one product over (1 = the calling thread only).
    pub threads: usize,
    /// ISA of the `Blocked` and `Micro` backends and of the epilogue.
    pub isa: Isa,
}

impl Default for GemmParams {
    fn default() -> Self {
        GemmParams { backend: GemmBackend::Library, threads: 1, isa: Isa::best() }
    }
}

impl GemmParams {
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

/// Candidates for `spec` on up to `max_threads` threads; the first is the default.
///
/// With AVX-512 our micro backend comes first. Measured on the 2-core Sapphire Rapids this
/// was built on (medians of 6 benchmark runs on a busy machine, fp32 FMA peak 243 GFLOP/s per
/// core), the MiniLM linear layers (m 128) with B pre-packed as `PackedLayout::Panel`, micro
/// vs the `gemm` crate, GFLOP/s at 1 / 2 threads: 128x1536x384 174 / 164 vs 137 / 125,
/// 128x384x1536 177 / 169 vs 155 / 132, 128x1152x384 182 / 166 vs 154 / 132. With a plain
/// (per-call packed) B the two are about even (145 / 144 / 152 vs 137 / 155 / 154 at 1 thread),
/// as at 1024^3. Without AVX-512 (not measured) the `gemm` crate stays first.
pub fn gemm_candidates(spec: &GemmSpec, max_threads: usize) -> Vec<GemmParams> {
    let mut threads = vec![default_threads(spec, max_threads)];
    for t in [1, max_threads.max(1)] {
        if !threads.contains(&t) {
            threads.push(t);
        }
    }
    let mut first = [GemmBackend::Library, GemmBackend::Micro];
    if Isa::best() == Isa::Avx512 {
        first.reverse();
    }
    let mut out = Vec::new();
    for backend in first {
        for &t in &threads {
            out.push(GemmParams { backend, threads: t, isa: Isa::best() });
        }
    }
    for isa in Isa::available() {
        for &t in &threads {
            out.push(GemmParams { backend: GemmBackend::Blocked, threads: t, isa });
        }
    }
    out
}

/// One thread below ~2 MFLOP (threading costs more than it saves there), else all.
fn default_threads(spec: &GemmSpec, max_threads: usize) -> usize {
    if spec.flops() < 2.0e6 { 1 } else { max_threads.max(1) }
}

/// `C = alpha op(A) op(B) + beta C + bias`, then `spec.act`.
pub fn sgemm(spec: &GemmSpec, a: &[f32], b: &[f32], bias: Bias<'_>, c: &mut [f32], params: &GemmParams) -> Result<(), KernelError> {
    spec.check(a.len(), b.len(), c.len(), bias)?;
    run(spec, a, b, bias, c, params)
}

/// Strides (in elements) between the matrices of a batch; a stride of 0 reuses one matrix
/// for every item (broadcast). C items must not overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub count: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
}

/// `count` independent GEMMs of one spec. With `threads > 1` and at least `threads` items, the
/// items run in parallel (each on one thread); otherwise one after another, each threaded.
pub fn sgemm_batched(
    spec: &GemmSpec,
    batch: Batch,
    a: &[f32],
    b: &[f32],
    bias: Bias<'_>,
    c: &mut [f32],
    params: &GemmParams,
) -> Result<(), KernelError> {
    if batch.count == 0 || spec.c_extent() == 0 {
        return Ok(());
    }
    let last = batch.count - 1;
    let start =
        |stride: usize, what: &str| last.checked_mul(stride).ok_or_else(|| invalid(KERNEL, format!("{what} batch stride overflows")));
    let (a0, b0, c0) = (start(batch.stride_a, "A")?, start(batch.stride_b, "B")?, start(batch.stride_c, "C")?);
    // The last item starts furthest in; if its matrices fit, every earlier item's do. An
    // empty operand (k == 0) needs no elements wherever it starts.
    let tail = |buf_len: usize, at: usize| buf_len.saturating_sub(at);
    spec.check(tail(a.len(), a0), tail(b.len(), b0), tail(c.len(), c0), bias)?;
    if batch.count > 1 && batch.stride_c < spec.c_extent() {
        return Err(invalid(
            KERNEL,
            format!("C batch stride {} < one C's extent {} (items would overlap)", batch.stride_c, spec.c_extent()),
        ));
    }
    let item = |i: usize, ci: &mut [f32], p: &GemmParams| {
        let ai = a.get(i * batch.stride_a..).unwrap_or(&[]);
        let bi = b.get(i * batch.stride_b..).unwrap_or(&[]);
        run(spec, ai, bi, bias, ci, p)
    };
    if batch.count == 1 {
        return item(0, c, params);
    }
    let chunks = c.chunks_mut(batch.stride_c).take(batch.count);
    if params.threads > 1 && batch.count >= params.threads {
        let one = params.threads(1);
        crate::par::try_run(chunks.collect(), params.threads, |i, ci| item(i, ci, &one))
    } else {
        chunks.enumerate().try_for_each(|(i, ci)| item(i, ci, params))
    }
}

/// The product on checked buffers.
fn run(spec: &GemmSpec, a: &[f32], b: &[f32], bias: Bias<'_>, c: &mut [f32], params: &GemmParams) -> Result<(), KernelError> {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let ldc = spec.ldc_eff();
    if k == 0 {
        scale_c(c, m, n, ldc, spec.beta);
    } else {
        match params.backend {
            GemmBackend::Library => {
                let (a_rs, a_cs) = spec.a_strides();
                let (b_rs, b_cs) = spec.b_strides();
                arch::gemm_library(
                    arch::LibraryGemm { m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, alpha: spec.alpha, beta: spec.beta },
                    params.threads,
                )?;
            }
            GemmBackend::Blocked => super::gemm_blocked::blocked(spec, a, b, c, params),
            GemmBackend::Micro => {
                let (rs, cs) = spec.b_strides();
                return micro::gemm(spec, a, micro::BSource::Strided { b, rs, cs }, bias, c, params);
            }
        }
    }
    epilogue(c, m, n, ldc, bias, spec.act, params.isa, params.threads);
    Ok(())
}

/// `C = beta C` (beta 0 writes zeros, ignoring NaN in C).
pub(crate) fn scale_c(c: &mut [f32], m: usize, n: usize, ldc: usize, beta: f32) {
    for row in c.chunks_mut(ldc).take(m) {
        let row = &mut row[..n];
        if beta == 0.0 {
            row.fill(0.0);
        } else if beta != 1.0 {
            row.iter_mut().for_each(|x| *x *= beta);
        }
    }
}

/// Bias and activation over C, split over rows on `threads` threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn epilogue(c: &mut [f32], m: usize, n: usize, ldc: usize, bias: Bias<'_>, act: Activation, isa: Isa, threads: usize) {
    if matches!(bias, Bias::None) && act == Activation::None {
        return;
    }
    let c = &mut c[..(m - 1) * ldc + n];
    if threads <= 1 || m < 2 || m * n < 1 << 14 {
        arch::bias_act(isa, c, n, ldc, 0, bias, act);
        return;
    }
    let rows_per = m.div_ceil(threads);
    crate::par::run(c.chunks_mut(rows_per * ldc).collect(), threads, |t, block| {
        arch::bias_act(isa, block, n, ldc, t * rows_per, bias, act);
    });
}
