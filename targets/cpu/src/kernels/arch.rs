//! The only module with `unsafe`: run-time ISA dispatch and the call into the `gemm` crate.
//!
//! Why `unsafe` is unavoidable here:
//! - A function compiled with `#[target_feature(enable = "avx512f")]` may only be called from
//!   code without that feature inside `unsafe`, after the caller has checked at run time that
//!   the CPU has it (`Isa::effective` does, with `is_x86_feature_detected!`). The kernel
//!   bodies themselves are safe Rust (`#[inline(always)]` functions in the other modules) that
//!   the compiler vectorises for each feature set; [`multiversion!`] wraps each body in one
//!   function per ISA and dispatches, so the unsafe calls are all here, each after detection.
//! - `gemm::gemm` is an `unsafe fn` over raw pointers and strides; [`gemm_library`] checks that
//!   every element the strides reach lies inside the slices before calling it.
//! - The FMA peak loop uses AVX-512/AVX2 intrinsics in `#[target_feature]` functions.
#![allow(unsafe_code)]

use super::activation::{self, Activation, Bias};
use super::error::{KernelError, invalid};
use super::isa::Isa;

/// Defines `pub(crate) fn $name(isa: Isa, args..)` that runs `$body(fma, args..)` compiled for
/// the best available ISA not above `isa` (`fma` is true where fused multiply-add is fast).
macro_rules! multiversion {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:path;) => {
        $(#[$meta])*
        pub(crate) fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? {
                    $body(true, $($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? {
                    $body(true, $($arg),*)
                }
                match isa.effective() {
                    // SAFETY: `effective` returns Avx512 only when is_x86_feature_detected!
                    // reported avx512f/vl/bw/dq, avx2 and fma on this CPU.
                    Isa::Avx512 => return unsafe { v4($($arg),*) },
                    // SAFETY: `effective` returns Avx2Fma only when avx2 and fma were detected.
                    Isa::Avx2Fma => return unsafe { v3($($arg),*) },
                    _ => {}
                }
            }
            let _ = isa;
            $body(cfg!(target_arch = "aarch64"), $($arg),*)
        }
    };
}

#[inline(always)]
fn bias_act_fma(_fma: bool, c: &mut [f32], n: usize, ldc: usize, row0: usize, bias: Bias<'_>, act: Activation) {
    activation::bias_act_body(c, n, ldc, row0, bias, act)
}

multiversion! {
    /// Bias + activation over rows of a block (see `activation::bias_act_body`).
    fn bias_act(c: &mut [f32], n: usize, ldc: usize, row0: usize, bias: Bias<'_>, act: Activation) = bias_act_fma;
}

#[inline(always)]
fn bias_act_rows_fma(
    _fma: bool,
    rows: &mut [&mut [f32]],
    (col, ncols): (usize, usize),
    row0: usize,
    bias: Bias<'_>,
    act: Activation,
) -> bool {
    for (r, row) in rows.iter_mut().enumerate() {
        let Some(seg) = row.get_mut(col..col + ncols) else { return false };
        activation::bias_act_body(seg, ncols, ncols, row0 + r, bias, act);
    }
    true
}

multiversion! {
    /// Bias + activation over columns `col..col + ncols` of a register tile's rows (one
    /// dispatch per tile); false when a row is shorter.
    fn bias_act_rows(rows: &mut [&mut [f32]], cols: (usize, usize), row0: usize, bias: Bias<'_>, act: Activation) -> bool = bias_act_rows_fma;
}

/// Operands of our blocked GEMM: `op(A)` via strides, `op(B)` as row-major rows.
pub(crate) struct BlockedGemm<'a> {
    pub n: usize,
    pub k: usize,
    pub a: &'a [f32],
    pub a_rs: usize,
    pub a_cs: usize,
    pub b: &'a [f32],
    pub ldb: usize,
    pub alpha: f32,
    pub ldc: usize,
}

multiversion! {
    /// Rows `r0..r0 + rows` of our blocked product (`c` starts at row `r0`).
    fn gemm_blocked(job: &BlockedGemm<'_>, c: &mut [f32], r0: usize, rows: usize) = super::gemm_blocked::blocked_body;
}

/// One call of the `gemm` crate: `C = beta C + alpha op(A) op(B)` (read C only if beta != 0).
pub(crate) struct LibraryGemm<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: &'a [f32],
    pub a_rs: usize,
    pub a_cs: usize,
    pub b: &'a [f32],
    pub b_rs: usize,
    pub b_cs: usize,
    pub c: &'a mut [f32],
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
}

/// Number of elements a `rows x cols` view with strides `(rs, cs)` reaches (last index + 1).
fn reach(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)?.checked_add(1)
}

fn as_isize(v: usize) -> Result<isize, KernelError> {
    isize::try_from(v).map_err(|_| invalid("gemm", format!("stride {v} too large")))
}

/// Runs the `gemm` crate after checking every reachable element is inside the slices.
pub(crate) fn gemm_library(g: LibraryGemm<'_>, threads: usize) -> Result<(), KernelError> {
    let LibraryGemm { m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, alpha, beta } = g;
    if m == 0 || n == 0 || k == 0 {
        return Err(invalid("gemm", "library call with an empty dimension"));
    }
    let fits = |need: Option<usize>, len: usize| need.is_some_and(|need| need <= len);
    if !fits(reach(m, k, a_rs, a_cs), a.len()) || !fits(reach(k, n, b_rs, b_cs), b.len()) || ldc < n || !fits(reach(m, n, ldc, 1), c.len())
    {
        return Err(invalid("gemm", "operand strides reach outside the buffers"));
    }
    // Threads split C's rows on Kiln's spinning pool (crate::par), each part a one-thread
    // call: the crate's own rayon threads sleep between calls and take ~0.1 ms to wake here.
    if threads > 1 && m >= 16 * threads {
        let per = m.div_ceil(threads);
        let parts: Vec<(usize, &mut [f32])> =
            c.chunks_mut(per * ldc).take(m.div_ceil(per)).enumerate().map(|(t, c)| (t * per, c)).collect();
        return crate::par::try_run(parts, threads, |_, (r0, c)| {
            let rows = per.min(m - r0);
            let a = a.get(r0 * a_rs..).ok_or_else(|| invalid("gemm", "A rows"))?;
            gemm_library(LibraryGemm { m: rows, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, alpha, beta }, 1)
        });
    }
    let (a_rs, a_cs, b_rs, b_cs, ldc) = (as_isize(a_rs)?, as_isize(a_cs)?, as_isize(b_rs)?, as_isize(b_cs)?, as_isize(ldc)?);
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: every element reached through (ptr, strides, dims) was checked above to lie in
    // its slice; C is borrowed mutably, so it aliases neither A nor B, and its strides (1, ldc
    // >= n) address distinct elements, so the crate's threads write disjoint locations.
    // `gemm::gemm` picks its AVX-512/AVX2/scalar kernel with run-time feature detection.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc,
            beta != 0.0,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Runs a tight loop of independent vector FMAs for about `iters` iterations and returns
/// (flops done, a value depending on the result so the loop is not removed).
pub(crate) fn fma_loop(isa: Isa, iters: u64) -> (f64, f32) {
    #[cfg(target_arch = "x86_64")]
    match isa.effective() {
        // SAFETY: Avx512 is returned by `effective` only after avx512f was detected.
        Isa::Avx512 => return (iters as f64 * 12.0 * 16.0 * 2.0, unsafe { fma_avx512(iters) }),
        // SAFETY: Avx2Fma is returned by `effective` only after avx2 and fma were detected.
        Isa::Avx2Fma => return (iters as f64 * 12.0 * 8.0 * 2.0, unsafe { fma_avx2(iters) }),
        _ => {}
    }
    let _ = isa;
    (iters as f64 * 48.0 * 2.0, mul_add_loop(iters))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_avx512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let b = _mm512_set1_ps(std::hint::black_box(0.999_999));
    let c = _mm512_set1_ps(std::hint::black_box(1.0e-6));
    let mut acc = [_mm512_set1_ps(std::hint::black_box(0.5)); 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, b, c);
        }
    }
    acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_avx2(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let b = _mm256_set1_ps(std::hint::black_box(0.999_999));
    let c = _mm256_set1_ps(std::hint::black_box(1.0e-6));
    let mut acc = [_mm256_set1_ps(std::hint::black_box(0.5)); 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, b, c);
        }
    }
    let mut lanes = [0.0f32; 8];
    let mut s = 0.0;
    for v in acc {
        _mm256_storeu_ps_safe(&mut lanes, v);
        s += lanes.iter().sum::<f32>();
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn _mm256_storeu_ps_safe(out: &mut [f32; 8], v: std::arch::x86_64::__m256) {
    // SAFETY: `out` is 8 writable f32 (32 bytes), exactly what the unaligned store writes.
    unsafe { std::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), v) }
}

/// Baseline loop: 12 independent 4-lane multiply-adds (fused on aarch64), which the compiler
/// keeps in vector registers.
fn mul_add_loop(iters: u64) -> f32 {
    let b = std::hint::black_box(0.999_999f32);
    let c = std::hint::black_box(1.0e-6f32);
    let mut acc = [[std::hint::black_box(0.5f32); 4]; 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            for lane in v.iter_mut() {
                *lane = if cfg!(target_arch = "aarch64") { lane.mul_add(b, c) } else { *lane * b + c };
            }
        }
    }
    acc.iter().flatten().sum()
}

multiversion! {
    /// Packs a block of A into row panels for our microkernels (see `micro_pack::pack_a_body`).
    fn pack_a(a: &super::micro_pack::Strided<'_>, rows: (usize, usize), ks: (usize, usize), mr: usize, dst: &mut [f32]) -> Option<()> = super::micro_pack::pack_a_body;
}

multiversion! {
    /// Packs a block of B into column panels for our microkernels (see `micro_pack::pack_b_body`).
    fn pack_b(b: &super::micro_pack::Strided<'_>, ks: (usize, usize), js: (usize, usize), nr: usize, dst: &mut [f32]) -> Option<()> = super::micro_pack::pack_b_body;
}

multiversion! {
    /// Packs a block of a row-table B (see `micro_pack::pack_b_rows_body`).
    fn pack_b_rows(b: &super::micro_pack::RowTable<'_>, ks: (usize, usize), js: (usize, usize), nr: usize, dst: &mut [f32]) -> Option<()> = super::micro_pack::pack_b_rows_body;
}

multiversion! {
    /// NCHW depthwise convolution of output planes `first..` into `y`.
    fn depthwise_nchw(job: &super::conv::ConvJob<'_>, oh: usize, ow: usize, first: usize, y: &mut [f32]) = super::depthwise::nchw_body;
}

multiversion! {
    /// NHWC direct convolution (short reduction) of output rows `first..` into `y`.
    fn direct_nhwc(job: &super::conv::ConvJob<'_>, oh: usize, ow: usize, first: usize, y: &mut [f32]) = super::direct::nhwc_body;
}

multiversion! {
    /// NHWC depthwise convolution of output rows `first..` into `y`.
    fn depthwise_nhwc(job: &super::conv::ConvJob<'_>, oh: usize, ow: usize, first: usize, y: &mut [f32]) = super::depthwise::nhwc_body;
}

multiversion! {
    /// Every step of an elementwise chain over one tile.
    fn chain_tile(steps: &[super::chain::Step<'_>], tile: &mut [f32], start: usize, row_len: usize) = super::chain::tile_body;
}

multiversion! {
    /// Softmax of each row of `block` in place.
    fn softmax_rows(block: &mut [f32], row_len: usize) = super::softmax::rows_body;
}

multiversion! {
    /// Layer norm of each row of `block` in place.
    fn layer_norm_rows(norm: &super::layernorm::Norm<'_>, block: &mut [f32]) = super::layernorm::rows_body;
}

multiversion! {
    /// Softmax of each row of `x` into `out`.
    fn softmax_rows_from(x: &[f32], out: &mut [f32], row_len: usize) = super::softmax::rows_from_body;
}

multiversion! {
    /// Dequantizes a block of low-precision weights into f32 column panels (see `wpack::unpack_body`).
    fn wunpack(w: &super::wpack::WPacked, ks: (usize, usize), js: (usize, usize), nr: usize, dst: &mut [f32]) -> Option<()> = super::wpack::unpack_body;
}

multiversion! {
    /// Rows and columns of a weight-only product with few rows (see `wgemv::gemv_body`).
    fn wgemv(job: &super::wgemv::GemvJob<'_>, rows: (usize, usize), cols: (usize, usize), c: &mut [&mut [f32]]) -> Option<()> = super::wgemv::gemv_body;
}

multiversion! {
    /// Rounds f32 values to bf16, as f32 (see `wgemm::bf16_round_body`).
    fn bf16_round(x: &[f32], out: &mut [f32]) = super::wgemm::bf16_round_body;
}

multiversion! {
    /// One row of X as bf16 pairs (see `wgemm::bf16_pack_row_body`).
    fn bf16_pack_row(x: &[f32], dst: &mut [u32]) = super::wgemm::bf16_pack_row_body;
}
