//! Weight-only GEMM: `C = act(Xc W + bias)` with X f32 `[m, k]`, W constant low-precision
//! weights packed once ([`WPacked`]: f16, bf16, int4/uint4 group-wise, int8/uint8), and `Xc`
//! X itself ([`WCompute::F32`]) or X rounded to bf16 ([`WCompute::Bf16`], as a target
//! computing bf16 x bf16 products with f32 sums does). Paths ([`WPath`]):
//! - `Gemv` (few rows): reads the low-precision panels directly, dequantizing them into L1
//!   blocks that every row runs against (`wgemv`): bandwidth-bound, so fewer bytes per weight
//!   is the gain.
//! - `Gemm`: the f32 microkernel driver (`micro`) with each `kc x nc` B block dequantized from
//!   the panels into its L2-resident f32 panels where an f32 B would have been packed.
//! - `Bf16Dot` (bf16 weights, bf16 compute): the AVX512-BF16 `vdpbf16ps` tile (`arch_wbf16`).
//! - `Amx` (bf16 weights, bf16 compute): the AMX-BF16 tile (`arch_wamx`).
//!
//! A path that does not apply (the CPU lacks it, or the weights or compute do not fit it)
//! falls back to `Gemm` (or `Gemv` for few rows), so every params value is safe.

use super::activation::{Activation, Bias};
use super::arch;
use super::arch_wamx;
use super::arch_wbf16::{self, Bf16Job};
use super::arch_wgemv;
use super::error::{KernelError, check_len, checked_product, invalid};
use super::gemm::{GemmBackend, GemmParams, GemmSpec};
use super::isa::Isa;
use super::micro::{self, BSource};
use super::wgemv::{GW, GemvJob};
use super::wpack::{WKind, WPANEL, WPacked, f32_to_bf16};

const KERNEL: &str = "wgemm";

/// What the products compute in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WCompute {
    /// X as is; the weights dequantized to f32.
    F32,
    /// X rounded to bf16 first (the products of two bf16 are exact in f32).
    Bf16,
}

/// How a weight-only product runs (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WPath {
    Gemv,
    Gemm,
    Bf16Dot,
    Amx,
}

/// Choices of one weight-only product: path, threads, and the ISA of the f32 paths (GEMV and
/// the dequantizing GEMM; the best available one in every candidate, lower ones for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WGemmParams {
    pub path: WPath,
    pub threads: usize,
    pub isa: Isa,
}

/// Up to this many rows the GEMV path is the default.
const GEMV_ROWS: usize = 16;
/// From this many rows the AMX tile (where available) is the default for a bf16 compute.
const AMX_ROWS: usize = 32;

/// Candidates for an `m x n x k` product on `kind` weights computing in `compute`, the
/// default first: GEMV up to 16 rows, else the AMX-BF16 tile from 32 rows (bf16), else the
/// AVX512-BF16 tile (bf16), else the dequantizing GEMM; the others after; all threads, then 1.
pub fn wgemm_candidates(m: usize, kind: WKind, compute: WCompute, max_threads: usize) -> Vec<WGemmParams> {
    let bf16 = kind == WKind::Bf16 && compute == WCompute::Bf16;
    let mut paths = Vec::new();
    if bf16 && arch_wamx::available() && m >= AMX_ROWS {
        paths.push(WPath::Amx);
    }
    if m <= GEMV_ROWS {
        paths.push(WPath::Gemv);
    }
    if bf16 && arch_wbf16::available() {
        paths.push(WPath::Bf16Dot);
    }
    paths.push(WPath::Gemm);
    if m > GEMV_ROWS && m <= 4 * GEMV_ROWS {
        paths.push(WPath::Gemv);
    }
    if bf16 && arch_wamx::available() && m < AMX_ROWS {
        paths.push(WPath::Amx);
    }
    let threads = if m == 0 { 1 } else { max_threads.max(1) };
    let mut out = Vec::new();
    for path in paths {
        for t in [threads, 1] {
            let p = WGemmParams { path, threads: t, isa: Isa::best() };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Bias and activation of the product.
#[derive(Clone, Copy, Debug, Default)]
pub struct WEpilogue<'a> {
    /// One per column (`len == n`).
    pub bias: Option<&'a [f32]>,
    pub act: Activation,
}

/// `c = act(Xc W + bias)`, `x` row-major `m x k`, `c` row-major `m x n`.
pub fn wgemm(
    x: &[f32],
    m: usize,
    w: &WPacked,
    compute: WCompute,
    epi: &WEpilogue<'_>,
    c: &mut [f32],
    params: &WGemmParams,
) -> Result<(), KernelError> {
    let (k, n) = (w.k(), w.n());
    check_len(KERNEL, "X", x.len(), checked_product(KERNEL, &[m, k])?)?;
    check_len(KERNEL, "C", c.len(), checked_product(KERNEL, &[m, n])?)?;
    if let Some(b) = epi.bias {
        check_len(KERNEL, "bias", b.len(), n)?;
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (threads, isa) = (params.threads.max(1), params.isa.effective());
    let bf16 = w.kind() == WKind::Bf16 && compute == WCompute::Bf16 && isa == Isa::Avx512;
    let path = match params.path {
        WPath::Amx if bf16 && arch_wamx::available() => WPath::Amx,
        WPath::Amx | WPath::Bf16Dot if bf16 && arch_wbf16::available() => WPath::Bf16Dot,
        WPath::Gemv => WPath::Gemv,
        WPath::Gemm => WPath::Gemm,
        _ if m <= GEMV_ROWS => WPath::Gemv,
        _ => WPath::Gemm,
    };
    let rounded;
    let x = match (compute, path) {
        (WCompute::Bf16, WPath::Gemv | WPath::Gemm) => {
            rounded = bf16_rounded(x, isa);
            &rounded[..]
        }
        _ => x,
    };
    match path {
        WPath::Gemv => {
            let job = GemvJob { w, x, m, bias: epi.bias, act: epi.act };
            split_c(c, (m, n), (GW, 1), threads, &|rows, cols, part| {
                let (rows, cols) = ((rows.start, rows.end), (cols.start, cols.end));
                if isa == Isa::Avx512 { arch_wgemv::gemv(&job, rows, cols, part) } else { arch::wgemv(isa, &job, rows, cols, part) }
            })
        }
        WPath::Gemm => {
            let spec = GemmSpec::new(m, n, k).act(epi.act);
            let params = GemmParams { backend: GemmBackend::Micro, threads, isa };
            micro::gemm(&spec, x, BSource::Low(w), bias_of(epi), c, &params)
        }
        WPath::Bf16Dot | WPath::Amx => {
            let amx = path == WPath::Amx;
            let mr = if amx { arch_wamx::MR } else { arch_wbf16::MR };
            let ldp = w.pairs();
            let a = bf16_pairs(x, m, k, ldp, arch_wamx::MR)?;
            let job = Bf16Job { a: &a, ldp, w, bias: epi.bias, act: epi.act };
            let cw = if amx { 2 * WPANEL } else { 3 * WPANEL };
            split_c(c, (m, n), (cw, mr), threads, &|rows, cols, part| {
                if amx { arch_wamx::part(&job, rows, cols, part) } else { arch_wbf16::part(&job, rows, cols, part) }
            })
        }
    }
}

fn bias_of<'a>(epi: &WEpilogue<'a>) -> Bias<'a> {
    epi.bias.map_or(Bias::None, Bias::PerCol)
}

/// X rounded to bf16 (as f32), as the reference's Cast rounds.
fn bf16_rounded(x: &[f32], isa: Isa) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    arch::bf16_round(isa, x, &mut out);
    out
}

#[inline(always)]
pub(crate) fn bf16_round_body(_fma: bool, x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f32::from_bits(u32::from(f32_to_bf16(v)) << 16);
    }
}

/// X as bf16 pairs, `ldp` pairs per row (zero past k), rows zero past m up to a multiple of
/// `rows_to`.
fn bf16_pairs(x: &[f32], m: usize, k: usize, ldp: usize, rows_to: usize) -> Result<Vec<u32>, KernelError> {
    if k.div_ceil(2) > ldp {
        return Err(invalid(KERNEL, format!("{ldp} bf16 pairs per row for k = {k}")));
    }
    let mut a = vec![0u32; checked_product(KERNEL, &[m.div_ceil(rows_to) * rows_to, ldp])?];
    if k > 0 {
        for (src, dst) in x.chunks_exact(k).zip(a.chunks_exact_mut(ldp.max(1))) {
            arch::bf16_pack_row(Isa::best(), src, dst);
        }
    }
    Ok(a)
}

#[inline(always)]
pub(crate) fn bf16_pack_row_body(_fma: bool, x: &[f32], dst: &mut [u32]) {
    let mut pairs = x.chunks_exact(2);
    for (d, p) in dst.iter_mut().zip(pairs.by_ref()) {
        *d = u32::from(f32_to_bf16(p[0])) | (u32::from(f32_to_bf16(p[1])) << 16);
    }
    if let (Some(&last), Some(d)) = (pairs.remainder().first(), dst.get_mut(x.len() / 2)) {
        *d = u32::from(f32_to_bf16(last));
    }
}

/// A part of C: its rows, its columns, its row slices (starting at its first column).
type PartFn<'f> = dyn Fn(std::ops::Range<usize>, std::ops::Range<usize>, &mut [&mut [f32]]) -> Option<()> + Sync + 'f;

/// Runs `f` on parts of the row-major `m x n` C for `threads`: ranges of whole `cw`-column
/// blocks when there are at least two blocks per thread or too few rows, else ranges of whole
/// `mr`-row tiles.
fn split_c(c: &mut [f32], (m, n): (usize, usize), (cw, mr): (usize, usize), threads: usize, f: &PartFn<'_>) -> Result<(), KernelError> {
    let fail = || invalid(KERNEL, "a part did not fit its operands (or its ISA is missing)");
    let mut rows: Vec<&mut [f32]> = c.chunks_exact_mut(n).collect();
    let blocks = n.div_ceil(cw);
    if threads <= 1 || (blocks < 2 && m < 2 * mr) {
        return f(0..m, 0..n, &mut rows).ok_or_else(fail);
    }
    if blocks >= 2 * threads || m < 2 * mr * threads {
        let per = blocks.div_ceil(threads) * cw;
        return crate::par::try_run(micro::column_parts(rows, n, per), threads, |t, mut part| {
            f(0..m, t * per..((t + 1) * per).min(n), &mut part).ok_or_else(fail)
        });
    }
    let per = m.div_ceil(mr).div_ceil(threads) * mr;
    crate::par::try_run(rows.chunks_mut(per).collect(), threads, |t, part| f(t * per..(t * per + per).min(m), 0..n, part).ok_or_else(fail))
}
