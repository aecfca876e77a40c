//! Our GEMM microkernel backend ([`GemmBackend::Micro`](super::GemmBackend::Micro)):
//! BLIS-style blocking around register tiles.
//!
//! `C = alpha op(A) op(B) + beta C` is cut into row blocks of `mc`, k blocks of `kc` and
//! column blocks of `nc` (see [`Blocking`]): an `mr x kc` A panel stays in L1 while the B
//! panels of a `kc x nc` block stream past it from L2 (the tiles prefetch B a few rows ahead).
//! B is read from column panels `[n / nr][k][nr]` (zero-padded, 64-byte aligned): pre-packed
//! once by [`pack_b`](super::pack_b) with [`PackedLayout::Panel`](super::PackedLayout::Panel),
//! or, for a plain B, packed whole at the start of the call (in blocks per thread when it is
//! very large). The AVX-512 tiles read a row-major A in place; otherwise A is packed per block
//! into row panels `[mc / mr][kc][mr]`. The tiles (`arch_micro`: AVX-512 `8 x 48`, `6 x 64`,
//! `12 x 32`, `14 x 16`; AVX2 `6 x 16`; `micro_tile`: a portable `6 x 4`) write
//! `alpha AB + beta C` straight into C, and on the last k block the bias and activation run on
//! each tile while it is in L1. Threads split the columns (whole panels; A is shared), or the
//! rows when there are few panels.

use super::activation::{Activation, Bias};
use super::arch::{pack_a, pack_b, pack_b_rows};
use super::arch_micro::{AlignedVec, macro_kernel};
use super::error::{KernelError, invalid};
use super::gemm::{GemmParams, GemmSpec, epilogue, scale_c};
use super::isa::Isa;
use super::micro_pack::{RowTable, Strided};
use super::micro_tile::{Epilogue, MacroJob, columns_outer};
pub(crate) use super::micro_tile::{geometry, preferred_nr, valid_nr};

const KERNEL: &str = "gemm micro";

/// A plain B up to this many packed elements (64 MiB) is packed whole once per call; the
/// buffer is kept for the next call on the thread up to `WHOLE_B_KEEP` elements (16 MiB).
const WHOLE_B_MAX: usize = 16 << 20;
const WHOLE_B_KEEP: usize = 4 << 20;

/// Blocking of one thread's part, BLIS's order for a broadcast A: an `mr x kc` A panel
/// stays in L1 or L2 while the `kc x nc` B block (about 720 KiB) streams past it from L2; an
/// `mc x kc` packed A block takes about 4 MiB. `kc` is balanced so the k blocks are about
/// equal.
#[derive(Clone, Copy, Debug)]
struct Blocking {
    kc: usize,
    mc: usize,
    nc: usize,
}

/// The longest k block of the AVX-512 tiles, which read A in place. Splitting k costs a
/// reload of C per block and a tile prologue; keeping the A panel within 18 KiB of L1 (k
/// blocks of 384-768) was never measured faster than not splitting up to k = 1536, and
/// usually 1-4 points of the FMA peak slower (interleaved medians: 1024^3 on one thread 79%
/// -> 81%, 128 x 3072 x 768 79% -> 81%; 128 x 1536 x 384 from even to +7 points between
/// runs); at k = 4096, blocks of 1366 and 2048 were within noise of each other.
const KC_AVX512: usize = 1536;

fn blocking(isa: Isa, k: usize, mr: usize, nr: usize) -> Blocking {
    let kc_max = if isa == Isa::Avx512 { KC_AVX512 } else { ((18 << 10) / (4 * mr)).max(16) };
    let kc = k.div_ceil(k.div_ceil(kc_max).max(1)).max(1);
    let mc = ((4 << 20) / (4 * kc) / mr).max(1) * mr;
    let nc = ((720 << 10) / (4 * kc) / nr).max(1) * nr;
    Blocking { kc, mc, nc }
}

/// Where B comes from.
#[derive(Clone, Copy)]
pub(crate) enum BSource<'a> {
    /// `op(B)` as a `k x n` view with (row, column) strides.
    Strided { b: &'a [f32], rs: usize, cs: usize },
    /// Panels `[n / nr][k][nr]`, packed once.
    Panels { data: &'a [f32], nr: usize },
    /// Low-precision weights, dequantized per `kc x nc` block into the B block buffer.
    Low(&'a super::wpack::WPacked),
    /// Row `p` is the unit-stride run at `data[offs[p]]` (an implicit GEMM's shifted input
    /// rows), packed per `kc x nc` block.
    Rows(RowTable<'a>),
}

thread_local! {
    /// Packing buffers reused between calls on this thread: A blocks, B blocks (only for a
    /// B too large to pack whole), the whole packed B of a call.
    static SCRATCH: std::cell::Cell<(AlignedVec, AlignedVec)> = std::cell::Cell::default();
    static WHOLE_B: std::cell::Cell<AlignedVec> = std::cell::Cell::default();
}

/// The whole product on checked buffers (the caller checked sizes against `spec`): the
/// blocked driver, threaded, with the fused epilogue.
pub(crate) fn gemm(
    spec: &GemmSpec,
    a: &[f32],
    b: BSource<'_>,
    bias: Bias<'_>,
    c: &mut [f32],
    params: &GemmParams,
) -> Result<(), KernelError> {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let ldc = spec.ldc_eff();
    let Some(c) = c.get_mut(..spec.c_extent()) else {
        return Err(invalid(KERNEL, "C is too short"));
    };
    if k == 0 {
        scale_c(c, m, n, ldc, spec.beta);
        epilogue(c, m, n, ldc, bias, spec.act, params.isa, params.threads);
        return Ok(());
    }
    let isa = params.isa.effective();
    let threads = params.threads.max(1);
    // A plain B is packed (whole, below): read in place, its rows' stride would often map
    // them to a few L1 sets (row strides of 4 KiB multiples are common).
    let nr = match b {
        BSource::Panels { nr, .. } => nr,
        BSource::Strided { .. } | BSource::Low(_) | BSource::Rows(_) => preferred_nr(isa, n),
    };
    let (mr, sub) = geometry(isa, nr).ok_or_else(|| invalid(KERNEL, format!("panel width {nr}")))?;
    let whole = Whole { spec, a, b, bias, isa, nr, mr, sub };
    let packed_len = k.checked_mul(n.div_ceil(nr) * nr).filter(|&len| len <= WHOLE_B_MAX);
    match (b, packed_len) {
        (BSource::Strided { b, rs, cs }, Some(len)) => {
            let mut buf = WHOLE_B.take();
            buf.resize(len);
            let packed = pack_whole_b(isa, &Strided { data: b, rs, cs }, (k, n, nr), buf.as_mut_slice(), threads);
            let out = packed.and_then(|()| {
                let b = BSource::Panels { data: buf.as_slice(), nr };
                Whole { b, ..whole }.split(c, ldc, threads)
            });
            if len <= WHOLE_B_KEEP {
                WHOLE_B.set(buf);
            }
            out
        }
        _ => whole.split(c, ldc, threads),
    }
}

/// Packs all of `op(B)` into panels, whole panels split over `threads`.
fn pack_whole_b(isa: Isa, b: &Strided<'_>, (k, n, nr): (usize, usize, usize), dst: &mut [f32], threads: usize) -> Result<(), KernelError> {
    let panels = n.div_ceil(nr);
    let per = if threads > 1 && k * n >= 1 << 16 { panels.div_ceil(threads) } else { panels };
    let part = |(t, d): (usize, &mut [f32])| {
        let j0 = t * per * nr;
        pack_b(isa, b, (0, k), (j0, (per * nr).min(n - j0)), nr, d).ok_or_else(|| invalid(KERNEL, "B block"))
    };
    let chunks = dst.chunks_mut(per * k * nr).take(panels.div_ceil(per)).enumerate();
    if per < panels { crate::par::try_run(chunks.collect(), threads, |_, c| part(c)) } else { chunks.into_iter().try_for_each(part) }
}

/// Splits rows of `n` columns into column ranges of `per`: part `t` holds columns
/// `t per ..` of every row.
pub(crate) fn column_parts(rows: Vec<&mut [f32]>, n: usize, per: usize) -> Vec<Vec<&mut [f32]>> {
    let mut parts: Vec<Vec<&mut [f32]>> = (0..n.div_ceil(per.max(1))).map(|_| Vec::with_capacity(rows.len())).collect();
    for row in rows {
        let mut rest = row;
        for part in parts.iter_mut() {
            let (left, right) = rest.split_at_mut(per.min(rest.len()));
            part.push(left);
            rest = right;
        }
    }
    parts
}

/// What every thread shares.
#[derive(Clone, Copy)]
struct Whole<'a> {
    spec: &'a GemmSpec,
    a: &'a [f32],
    b: BSource<'a>,
    bias: Bias<'a>,
    isa: Isa,
    nr: usize,
    mr: usize,
    sub: usize,
}

impl Whole<'_> {
    /// Splits C over `threads`: whole B panels per thread when there are at least four per
    /// thread (balanced, and A is read in place or packed cheaply), else whole A panels per
    /// thread when there are at least two per thread, else what panels there are.
    fn split(&self, c: &mut [f32], ldc: usize, threads: usize) -> Result<(), KernelError> {
        let (m, n, mr, nr) = (self.spec.m, self.spec.n, self.mr, self.nr);
        let mut rows: Vec<&mut [f32]> = c.chunks_mut(ldc).filter_map(|row| row.get_mut(..n)).collect();
        if rows.len() != m {
            return Err(invalid(KERNEL, "C rows shorter than n"));
        }
        let panels = n.div_ceil(nr);
        if threads > 1 && panels < 4 * threads && m >= 2 * mr * threads {
            let per = m.div_ceil(mr).div_ceil(threads) * mr;
            return crate::par::try_run(rows.chunks_mut(per).collect(), threads, |t, part| {
                self.part(t * per..(t * per + per).min(m), 0..n, part)
            });
        }
        if threads == 1 || panels < 2 {
            return self.part(0..m, 0..n, &mut rows);
        }
        // Each thread's C is a column range of every row.
        let per = panels.div_ceil(threads.min(panels)) * nr;
        crate::par::try_run(column_parts(rows, n, per), threads, |t, mut part| {
            let j0 = t * per;
            self.part(0..m, j0..(j0 + per).min(n), &mut part)
        })
    }

    /// Rows `rows` and columns `cols` (`cols.start` a multiple of `nr`) of C into `c`, whose
    /// row slices start at column `cols.start`.
    fn part(&self, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>, c: &mut [&mut [f32]]) -> Result<(), KernelError> {
        let (mut abuf, mut bbuf) = SCRATCH.take();
        let out = self.blocks(rows, cols, c, &mut abuf, &mut bbuf);
        SCRATCH.set((abuf, bbuf));
        out
    }

    fn blocks(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        c: &mut [&mut [f32]],
        abuf: &mut AlignedVec,
        bbuf: &mut AlignedVec,
    ) -> Result<(), KernelError> {
        let spec = self.spec;
        let (k, nr, mr) = (spec.k, self.nr, self.mr);
        let blk = blocking(self.isa, k, mr, nr);
        let (rs, cs) = spec.a_strides();
        let a = Strided { data: self.a, rs, cs };
        // Row-major A is read in place by the AVX-512 tiles (no packing).
        let direct_a = cs == 1 && self.isa == Isa::Avx512;
        let fail = || invalid(KERNEL, "block outside its operands");
        for ic in rows.clone().step_by(blk.mc) {
            let mc = blk.mc.min(rows.end - ic);
            let c_rows = c.get_mut(ic - rows.start..ic - rows.start + mc).ok_or_else(fail)?;
            for pc in (0..k).step_by(blk.kc) {
                let kc = blk.kc.min(k - pc);
                let (a_block, a_rs) = if direct_a {
                    (self.a.get(ic * rs + pc..).ok_or_else(fail)?, rs)
                } else {
                    abuf.resize(mc.div_ceil(mr) * kc * mr);
                    pack_a(self.isa, &a, (ic, mc), (pc, kc), mr, abuf.as_mut_slice()).ok_or_else(fail)?;
                    (abuf.as_slice(), 0)
                };
                // Pre-packed panels with column slivers outer: each sliver is read once
                // whatever the block, so one block takes every column, and every sliver but
                // the first is prefetched while the one before it computes.
                let nc_blk = match self.b {
                    BSource::Panels { .. } if columns_outer(mc, kc) => cols.len().max(1),
                    _ => blk.nc,
                };
                for jc in cols.clone().step_by(nc_blk) {
                    let nc = nc_blk.min(cols.end - jc);
                    let (bdata, b_panel_stride, b_off, b_rs) = match self.b {
                        BSource::Panels { data, .. } => (data.get(jc / nr * k * nr..).ok_or_else(fail)?, k * nr, pc * nr, nr),
                        BSource::Strided { b, rs, cs } => {
                            bbuf.resize(nc.div_ceil(nr) * kc * nr);
                            let b = Strided { data: b, rs, cs };
                            pack_b(self.isa, &b, (pc, kc), (jc, nc), nr, bbuf.as_mut_slice()).ok_or_else(fail)?;
                            (bbuf.as_slice(), kc * nr, 0, nr)
                        }
                        BSource::Rows(t) => {
                            bbuf.resize(nc.div_ceil(nr) * kc * nr);
                            pack_b_rows(self.isa, &t, (pc, kc), (jc, nc), nr, bbuf.as_mut_slice()).ok_or_else(fail)?;
                            (bbuf.as_slice(), kc * nr, 0, nr)
                        }
                        BSource::Low(w) => {
                            bbuf.resize(nc.div_ceil(nr) * kc * nr);
                            super::wpack::unpack(self.isa, w, (pc, kc), (jc, nc), nr, bbuf.as_mut_slice()).ok_or_else(fail)?;
                            (bbuf.as_slice(), kc * nr, 0, nr)
                        }
                    };
                    let last = pc + kc == k && (!matches!(self.bias, Bias::None) || spec.act != Activation::None);
                    let epi = last.then(|| Epilogue {
                        bias: match self.bias {
                            Bias::PerCol(v) => Bias::PerCol(v.get(jc..).unwrap_or(&[])),
                            other => other,
                        },
                        act: spec.act,
                        row0: ic,
                        isa: self.isa,
                    });
                    let job = MacroJob {
                        a: a_block,
                        a_rs,
                        b: bdata,
                        b_panel_stride,
                        b_off,
                        b_rs,
                        nr,
                        mr,
                        sub: self.sub,
                        kc,
                        mc,
                        nc,
                        col0: jc - cols.start,
                        alpha: spec.alpha,
                        beta: if pc == 0 { spec.beta } else { 1.0 },
                        epi,
                    };
                    if !macro_kernel(self.isa, &job, c_rows) {
                        return Err(fail());
                    }
                }
            }
        }
        Ok(())
    }
}
