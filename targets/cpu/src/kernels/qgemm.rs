//! int8 GEMM: `C = epilogue(sum_k (A - za)(B - zb))` with A u8 (the activation, quantized on
//! the fly into [`QuantizedA`]) and B int8 (weights packed once into [`QPackedB`]).
//!
//! The tiles (`arch_q`: AVX-512 VNNI `vpdpbusd zmm` 8x48 / 6x64 / 12x32, AVX-VNNI `ymm` 6x16 /
//! 4x16, AVX2 `vpmaddwd` 2x16 / 1x16; here: a portable tile of any shape) compute the raw
//! `sum_k a b` over the whole k in registers. The zero points are compensated per tile with
//! the precomputed sums, `sum (a - za)(b - zb) = sum ab - zb sum_k a - za sum_k b + k za zb`
//! (wrapping i32, exact whenever the result fits i32), and the tile is written through the
//! fused epilogue while hot: `act(scale[n] * acc + bias[n])` ([`qgemm`]) or the i32 sums
//! themselves ([`qgemm_i32`]). Blocking (`nc`): 0 runs each `nv`-panel B sliver (in L1) against every
//! `mr`-row tile of A (from L2), the default; otherwise a block of `nc` column panels (B in L2)
//! against every row tile. Threads split the rows, or the column panels when the rows are few.

use super::activation::Activation;
use super::error::{KernelError, check_len, checked_product, invalid};
use super::qgemm_part::{F32Sink, I32Sink, Job, MAX_MR, MAX_NV, Sink, part};
use super::qpack::{QPackedB, QuantizedA};

const KERNEL: &str = "qgemm";

/// Columns per packed B panel (one zmm of i32).
pub(crate) const PANEL: usize = 16;

/// Instruction-set levels of the int8 kernels, chosen at run time; one the CPU lacks falls
/// back to the best one below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QIsa {
    /// Portable code (the compiler's vectorisation only).
    Scalar,
    /// AVX2: u8 and i8 widened to i16, `vpmaddwd`.
    Avx2,
    /// AVX-VNNI: `vpdpbusd` on ymm.
    AvxVnni,
    /// AVX-512 F/BW/VL/DQ + VNNI: `vpdpbusd` on zmm.
    Avx512Vnni,
    /// AMX-INT8 tiles (`tdpbusd`, 32x32 per pass): not in `available` (a matrix unit, asked
    /// for by name); [`qgemm_candidates`] puts it first from 32 rows, where it was measured
    /// faster.
    Amx,
}

impl QIsa {
    pub fn is_available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = super::isa::has_avx2_fma();
            match self {
                QIsa::Scalar => true,
                QIsa::Avx2 => avx2,
                QIsa::AvxVnni => avx2 && is_x86_feature_detected!("avxvnni"),
                QIsa::Avx512Vnni => super::isa::has_avx512() && is_x86_feature_detected!("avx512vnni"),
                QIsa::Amx => super::arch_qamx::available(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == QIsa::Scalar
        }
    }

    /// Vector levels available here, best first (AMX, a matrix unit, is asked for by name).
    pub fn available() -> Vec<QIsa> {
        [QIsa::Avx512Vnni, QIsa::AvxVnni, QIsa::Avx2, QIsa::Scalar].into_iter().filter(|i| i.is_available()).collect()
    }

    /// `self` if available, else the best available level below it.
    pub fn effective(self) -> QIsa {
        if self == QIsa::Amx && self.is_available() {
            return self;
        }
        QIsa::available().into_iter().find(|&i| i <= self).unwrap_or(QIsa::Scalar)
    }

    /// Register tile shapes `(mr, panels)` this level has (the first is its default).
    pub fn tiles(self) -> &'static [(usize, usize)] {
        match self {
            QIsa::Amx => &[(32, 2)],
            QIsa::Avx512Vnni => &[(8, 3), (6, 4), (12, 2)],
            QIsa::AvxVnni => &[(6, 1), (4, 1)],
            QIsa::Avx2 => &[(2, 1), (1, 1)],
            QIsa::Scalar => &[(4, 1)],
        }
    }
}

/// Choices of one int8 GEMM: level, register tile (`mr` rows x `nv` panels of 16), column
/// order (`nc`: 0 = B sliver outer, else blocks of `nc` panels), threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QGemmParams {
    pub isa: QIsa,
    pub mr: usize,
    pub nv: usize,
    pub nc: usize,
    pub threads: usize,
}

impl Default for QGemmParams {
    fn default() -> Self {
        let isa = QIsa::Avx512Vnni.effective();
        let (mr, nv) = isa.tiles().first().copied().unwrap_or((4, 1));
        QGemmParams { isa, mr, nv, nc: 0, threads: 1 }
    }
}

/// From this many rows the AMX tile (when available) is the default candidate.
const AMX_DEFAULT_ROWS: usize = 32;

/// Candidates for an `m x n x k` product, the safe default first (best level, its default
/// tile, all threads): every level's tiles (AMX first from 32 rows, else last), two tile
/// orders on the first level, 1 thread.
pub fn qgemm_candidates(m: usize, n: usize, k: usize, max_threads: usize) -> Vec<QGemmParams> {
    let _ = (n, k);
    let threads = if m <= 1 { 1 } else { max_threads.max(1) };
    let mut out = Vec::new();
    let mut levels = QIsa::available();
    if QIsa::Amx.is_available() {
        // Measured (the kernel bench's int8 section, MiniLM shapes and 1024^3, 1 and 2
        // threads): 1.6-3x the AVX-512 VNNI tile from 128 rows up. A pass computes 32 rows,
        // so for fewer rows it is only a candidate after the others.
        if m >= AMX_DEFAULT_ROWS {
            levels.insert(0, QIsa::Amx);
        } else {
            levels.push(QIsa::Amx);
        }
    }
    for (level, isa) in levels.into_iter().enumerate() {
        for &(mr, nv) in isa.tiles() {
            let ncs: &[usize] = if level == 0 { &[0, 24] } else { &[0] };
            for &nc in ncs {
                for t in [threads, 1] {
                    let p = QGemmParams { isa, mr, nv, nc, threads: t };
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// The fused float epilogue of [`qgemm`]: `act(scale[j] * acc + bias[j])`.
#[derive(Clone, Copy, Debug)]
pub struct QEpilogue<'a> {
    /// Per column: x_scale * w_scale[j].
    pub scale: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub act: Activation,
}

/// `c[i][j] = act(scale[j] * sum_k (A[i][k] - za)(B[k][j] - zb[j]) + bias[j])`, c row-major
/// `a.rows() x b.n()`.
pub fn qgemm(a: &QuantizedA, b: &QPackedB, epi: &QEpilogue<'_>, c: &mut [f32], params: &QGemmParams) -> Result<(), KernelError> {
    check_len(KERNEL, "scale", epi.scale.len(), b.n())?;
    if let Some(bias) = epi.bias {
        check_len(KERNEL, "bias", bias.len(), b.n())?;
    }
    run(a, b, &F32Sink { scale: epi.scale, bias: epi.bias, act: epi.act, isa: super::isa::Isa::best() }, c, params)
}

/// The compensated i32 sums `c[i][j] = sum_k (A[i][k] - za)(B[k][j] - zb[j])` (wrapping).
pub fn qgemm_i32(a: &QuantizedA, b: &QPackedB, c: &mut [i32], params: &QGemmParams) -> Result<(), KernelError> {
    run(a, b, &I32Sink, c, params)
}

fn run<S: Sink>(a: &QuantizedA, b: &QPackedB, sink: &S, c: &mut [S::T], params: &QGemmParams) -> Result<(), KernelError> {
    let (m, n) = (a.rows, b.n());
    if a.k != b.k() {
        return Err(invalid(KERNEL, format!("A has k = {}, B has k = {}", a.k, b.k())));
    }
    check_len(KERNEL, "C", c.len(), checked_product(KERNEL, &[m, n])?)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let isa = params.isa.effective();
    let (mut mr, mut nv) = (params.mr, params.nv);
    // A tile the (effective) level does not have, e.g. AMX's asked for where AMX is missing,
    // becomes that level's default tile (the portable tile takes any shape).
    let known = isa == QIsa::Scalar || isa.tiles().contains(&(mr, nv));
    if !known || !(1..=MAX_MR).contains(&mr) || !(1..=MAX_NV).contains(&nv) || !super::qpack::ROW_ALIGN.is_multiple_of(mr) {
        (mr, nv) = isa.tiles().first().copied().unwrap_or((4, 1));
    }
    let za = a.zero_point;
    let k = b.k() as i32;
    let col_comp = b
        .col_sums()
        .iter()
        .zip(b.zero_points())
        .map(|(&s, &zb)| k.wrapping_mul(za).wrapping_mul(zb).wrapping_sub(za.wrapping_mul(s)))
        .collect();
    let zb_any = b.zero_points().iter().any(|&z| z != 0);
    let params = QGemmParams { isa, mr, nv, nc: params.nc, threads: params.threads.max(1) };
    let job = Job { a, b, col_comp, zb_any, params };
    let panels = n.div_ceil(PANEL);
    let threads = params.threads;
    if threads == 1 {
        return part(&job, sink, 0..m, 0..panels, c, n);
    }
    if m >= threads * mr * 2 || panels < threads {
        // Rows split in multiples of mr: each thread's C rows are contiguous.
        let rows_per = m.div_ceil(threads).div_ceil(mr) * mr;
        return crate::par::try_run(c.chunks_mut(rows_per * n).collect(), threads, |t, cc| {
            let r0 = t * rows_per;
            part(&job, sink, r0..(r0 + rows_per).min(m), 0..panels, cc, n)
        });
    }
    // Few rows: threads take column panels into their own buffers, copied into C after.
    let per = panels.div_ceil(threads);
    let mut parts: Vec<(usize, usize, Vec<S::T>)> = (0..threads)
        .map(|t| {
            let (p0, p1) = ((t * per).min(panels), ((t + 1) * per).min(panels));
            let (c0, c1) = (p0 * PANEL, (p1 * PANEL).min(n));
            (c0, c1, vec![S::T::default(); m * (c1 - c0)])
        })
        .collect();
    crate::par::try_run(parts.iter_mut().collect(), threads, |t, (c0, c1, buf)| {
        let (p0, p1) = ((t * per).min(panels), ((t + 1) * per).min(panels));
        part(&job, sink, 0..m, p0..p1, buf, *c1 - *c0)
    })?;
    for (c0, c1, buf) in parts {
        if c1 > c0 {
            for (dst, src) in c.chunks_exact_mut(n).zip(buf.chunks_exact(c1 - c0)) {
                dst[c0..c1].copy_from_slice(src);
            }
        }
    }
    Ok(())
}
