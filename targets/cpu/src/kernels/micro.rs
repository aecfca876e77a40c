//! Our GEMM microkernel backend ([`GemmBackend::Micro`](super::GemmBackend::Micro)):
//! BLIS-style blocking around register tiles.
//!
//! `C = alpha op(A) op(B) + beta C` is cut into k blocks of `kc` (B panels of `kc x sub` stay
//! in L1), column blocks of `nc` and row blocks of `mc` (a packed A block stays in L2). B is
//! read from column panels `[n / nr][k][nr]` (zero-padded): pre-packed once by
//! [`pack_b`](super::pack_b) with [`PackedLayout::Panel`](super::PackedLayout::Panel), or
//! packed per call from a strided B. A is packed per block into row panels `[mc / mr][kc][mr]`.
//! The tiles (`arch_micro`: AVX-512 `mr x 16 NV`, AVX2 `6 x 16`; here: a portable `4 x 8`)
//! write `alpha AB + beta C` straight into C, and on the last k block the bias and activation
//! run on each tile while it is in L1. Threads split the columns (whole panels), or the rows
//! when there are fewer panels than threads.

use rayon::prelude::*;

use super::activation::{Activation, Bias, bias_act_body};
use super::arch_micro::{AlignedVec, macro_kernel};
use super::error::{KernelError, invalid};
use super::gemm::{GemmParams, GemmSpec, epilogue, scale_c};
use super::isa::Isa;
use super::micro_pack::{pack_a, pack_b_panels};

const KERNEL: &str = "gemm micro";

/// One register tile: `kc` steps of packed A (`kc x mr`, k-major) times a B panel slice
/// (`kc` rows of stride `b_rs`), written to columns `col..col + ncols` of each C row.
pub(crate) struct TileArgs<'a> {
    pub kc: usize,
    pub a: &'a [f32],
    pub b: &'a [f32],
    pub b_rs: usize,
    pub col: usize,
    pub ncols: usize,
    pub alpha: f32,
    /// 0 writes C without reading it.
    pub beta: f32,
}

/// Bias and activation of the last k block; `bias` starts at the block's first column.
#[derive(Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    pub bias: Bias<'a>,
    pub act: Activation,
    /// Row of C (in the whole product) of the block's first row.
    pub row0: usize,
}

/// A packed A block (`mc` rows) times a packed B block (`nc` columns) over one k block.
pub(crate) struct MacroJob<'a> {
    pub a: &'a [f32],
    /// Panel `j` of the block starts at `j * b_panel_stride + b_off`, rows `nr` apart.
    pub b: &'a [f32],
    pub b_panel_stride: usize,
    pub b_off: usize,
    pub nr: usize,
    pub mr: usize,
    /// Tile width (divides `nr`).
    pub sub: usize,
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
    /// Column of the C row slices where the block starts.
    pub col0: usize,
    pub alpha: f32,
    pub beta: f32,
    pub epi: Option<Epilogue<'a>>,
}

/// Every tile of a macro job, B sub-panel outer (it stays in L1), A panels inner. False when
/// a tile did not fit its operands.
#[inline(always)]
pub(crate) fn macro_body<F>(job: &MacroJob<'_>, c: &mut [&mut [f32]], mut tile: F) -> bool
where
    F: FnMut(&TileArgs<'_>, &mut [&mut [f32]]) -> bool,
{
    let (mr, nr, sub, kc) = (job.mr, job.nr, job.sub, job.kc);
    if mr == 0 || sub == 0 || nr % sub != 0 || c.len() < job.mc {
        return false;
    }
    for (jr, j0) in (0..job.nc).step_by(nr).enumerate() {
        let Some(panel) = job.b.get(jr * job.b_panel_stride + job.b_off..) else {
            return false;
        };
        for s0 in (0..nr.min(job.nc - j0)).step_by(sub) {
            let col = j0 + s0;
            let ncols = sub.min(job.nc - col);
            for (ir, i0) in (0..job.mc).step_by(mr).enumerate() {
                let rows = mr.min(job.mc - i0);
                let (Some(a), Some(b)) = (job.a.get(ir * kc * mr..), panel.get(s0..)) else {
                    return false;
                };
                let t = TileArgs {
                    kc,
                    a,
                    b,
                    b_rs: nr,
                    col: job.col0 + col,
                    ncols,
                    alpha: job.alpha,
                    beta: job.beta,
                };
                let c_rows = &mut c[i0..i0 + rows];
                if !tile(&t, c_rows) {
                    return false;
                }
                if let Some(e) = job.epi {
                    let bias = match e.bias {
                        Bias::PerCol(v) => Bias::PerCol(v.get(col..).unwrap_or(&[])),
                        other => other,
                    };
                    for (r, row) in c_rows.iter_mut().enumerate() {
                        let Some(seg) = row.get_mut(t.col..t.col + ncols) else {
                            return false;
                        };
                        bias_act_body(seg, ncols, ncols, e.row0 + i0 + r, bias, e.act);
                    }
                }
            }
        }
    }
    true
}

/// Whether a tile's operands hold `mr` rows of A and `w` columns of B (row stride `b_rs`)
/// over `kc` steps, and C at most `mr` rows of at least `col + ncols` elements.
pub(crate) fn tile_fits(t: &TileArgs<'_>, c: &[&mut [f32]], mr: usize, w: usize) -> bool {
    t.kc > 0
        && t.ncols <= w
        && t.b_rs >= w
        && c.len() <= mr
        && t.a.len() >= t.kc * mr
        && t.b.len() >= (t.kc - 1) * t.b_rs + w
        && c.iter().all(|row| row.len() >= t.col + t.ncols)
}

const PORTABLE_MR: usize = 4;
const PORTABLE_W: usize = 8;

/// The portable `4 x 8` tile (the compiler vectorises it for the baseline ISA).
pub(crate) fn tile_portable(t: &TileArgs<'_>, c: &mut [&mut [f32]]) -> bool {
    const MR: usize = PORTABLE_MR;
    const W: usize = PORTABLE_W;
    if !tile_fits(t, c, MR, W) {
        return false;
    }
    let mut acc = [[0.0f32; W]; MR];
    for (ap, brow) in t.a.chunks_exact(MR).zip(t.b.chunks(t.b_rs)).take(t.kc) {
        let (Ok(ap), Some(Ok(brow))) = (
            <&[f32; MR]>::try_from(ap),
            brow.get(..W).map(<&[f32; W]>::try_from),
        ) else {
            return false;
        };
        for (acc_r, &av) in acc.iter_mut().zip(ap) {
            for (s, &bv) in acc_r.iter_mut().zip(brow) {
                *s = if cfg!(target_arch = "aarch64") {
                    av.mul_add(bv, *s)
                } else {
                    *s + av * bv
                };
            }
        }
    }
    for (row, acc_r) in c.iter_mut().zip(&acc) {
        for (x, s) in row[t.col..t.col + t.ncols].iter_mut().zip(acc_r) {
            *x = if t.beta == 0.0 {
                t.alpha * s
            } else {
                t.alpha * s + t.beta * *x
            };
        }
    }
    true
}

/// Panel width B is packed in by default for `isa`.
pub(crate) fn preferred_nr(isa: Isa) -> usize {
    match isa.effective() {
        Isa::Avx512 => 48,
        _ => 16,
    }
}

/// Panel widths a packed B may have (a tile for each ISA handles each).
pub(crate) fn valid_nr(nr: usize) -> bool {
    matches!(nr, 16 | 32 | 48 | 64)
}

/// (rows `mr`, width `sub`) of the tile `isa` runs on panels of width `nr`.
pub(crate) fn geometry(isa: Isa, nr: usize) -> Option<(usize, usize)> {
    if !valid_nr(nr) {
        return None;
    }
    Some(match isa.effective() {
        Isa::Avx512 => match nr {
            16 => (14, 16),
            32 => (12, 32),
            48 => (8, 48),
            _ => (6, 64),
        },
        Isa::Avx2Fma => (6, 16),
        _ => (PORTABLE_MR, PORTABLE_W),
    })
}

/// (kc, mc, nc): a `kc x sub` B panel fills about half of a 48 KiB L1, an `mc x kc` A block
/// about 1 MiB of L2, a per-call packed `kc x nc` B block about 4 MiB. `kc` is balanced so
/// the k blocks are about equal.
fn blocking(k: usize, mr: usize, sub: usize, nr: usize) -> (usize, usize, usize) {
    let kc_max = ((24 << 10) / (4 * sub)).max(64);
    let kc = k.div_ceil(k.div_ceil(kc_max).max(1)).max(1);
    let mc = ((1 << 20) / (4 * kc) / mr).max(1) * mr;
    let nc = ((4 << 20) / (4 * kc) / nr).max(1) * nr;
    (kc, mc, nc)
}

/// Where B comes from.
#[derive(Clone, Copy)]
pub(crate) enum BSource<'a> {
    /// `op(B)` as a `k x n` view with (row, column) strides: packed per call.
    Strided { b: &'a [f32], rs: usize, cs: usize },
    /// Panels `[n / nr][k][nr]`, packed once.
    Panels { data: &'a [f32], nr: usize },
}

/// The whole product on checked buffers (sizes were checked by the caller): the blocked
/// driver, threaded, with the fused epilogue.
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
    let nr = match b {
        BSource::Panels { nr, .. } => nr,
        BSource::Strided { .. } => preferred_nr(isa),
    };
    let (mr, sub) =
        geometry(isa, nr).ok_or_else(|| invalid(KERNEL, format!("panel width {nr}")))?;
    let whole = Whole {
        spec,
        a,
        b,
        bias,
        isa,
        nr,
        mr,
        sub,
    };
    let panels = n.div_ceil(nr);
    let threads = params.threads.max(1);
    let mut rows: Vec<&mut [f32]> = c.chunks_mut(ldc).map(|row| &mut row[..n]).collect();
    if threads == 1 || (panels < threads && m < 2 * mr) {
        return whole.part(0..m, 0..n, &mut rows);
    }
    if panels >= threads {
        // Whole panels per thread; each thread's C is a column range of every row.
        let per = panels.div_ceil(threads) * nr;
        let mut parts: Vec<Vec<&mut [f32]>> = (0..n.div_ceil(per))
            .map(|_| Vec::with_capacity(m))
            .collect();
        for row in rows {
            let mut rest = row;
            for part in parts.iter_mut() {
                let (left, right) = rest.split_at_mut(per.min(rest.len()));
                part.push(left);
                rest = right;
            }
        }
        parts
            .into_par_iter()
            .enumerate()
            .try_for_each(|(t, mut part)| {
                let j0 = t * per;
                whole.part(0..m, j0..(j0 + per).min(n), &mut part)
            })
    } else {
        let per = m.div_ceil(threads).div_ceil(mr) * mr;
        rows.par_chunks_mut(per)
            .enumerate()
            .try_for_each(|(t, part)| whole.part(t * per..(t * per + per).min(m), 0..n, part))
    }
}

/// What every thread shares.
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

thread_local! {
    /// Packing buffers (A block, B block) reused between calls on this thread.
    static SCRATCH: std::cell::Cell<(AlignedVec, AlignedVec)> = std::cell::Cell::default();
}

impl Whole<'_> {
    /// Rows `rows` and columns `cols` (`cols.start` a multiple of `nr`) of C into `c`, whose
    /// row slices start at column `cols.start`.
    fn part(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        c: &mut [&mut [f32]],
    ) -> Result<(), KernelError> {
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
        let (kc_blk, mc_blk, nc_blk) = blocking(k, mr, self.sub, nr);
        let nc_blk = if matches!(self.b, BSource::Panels { .. }) {
            cols.len()
        } else {
            nc_blk
        };
        let (a_rs, a_cs) = spec.a_strides();
        let fail = || invalid(KERNEL, "block outside its operands");
        for jc in cols.clone().step_by(nc_blk.max(1)) {
            let nc = nc_blk.min(cols.end - jc);
            for pc in (0..k).step_by(kc_blk) {
                let kc = kc_blk.min(k - pc);
                let (bdata, b_panel_stride, b_off): (&[f32], usize, usize) = match self.b {
                    BSource::Panels { data, .. } => (
                        data.get(jc / nr * k * nr..).ok_or_else(fail)?,
                        k * nr,
                        pc * nr,
                    ),
                    BSource::Strided { b, rs, cs } => {
                        bbuf.resize(nc.div_ceil(nr) * kc * nr);
                        pack_b_panels(b, rs, cs, (pc, kc), (jc, nc), nr, bbuf.as_mut_slice())
                            .ok_or_else(fail)?;
                        (bbuf.as_slice(), kc * nr, 0)
                    }
                };
                for ic in rows.clone().step_by(mc_blk) {
                    let mc = mc_blk.min(rows.end - ic);
                    abuf.resize(mc.div_ceil(mr) * kc * mr);
                    pack_a(
                        self.a,
                        a_rs,
                        a_cs,
                        (ic, mc),
                        (pc, kc),
                        mr,
                        abuf.as_mut_slice(),
                    )
                    .ok_or_else(fail)?;
                    let last = pc + kc == k
                        && (!matches!(self.bias, Bias::None) || spec.act != Activation::None);
                    let epi = last.then(|| Epilogue {
                        bias: match self.bias {
                            Bias::PerCol(v) => Bias::PerCol(v.get(jc..).unwrap_or(&[])),
                            other => other,
                        },
                        act: spec.act,
                        row0: ic,
                    });
                    let job = MacroJob {
                        a: abuf.as_slice(),
                        b: bdata,
                        b_panel_stride,
                        b_off,
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
                    let c_rows = c
                        .get_mut(ic - rows.start..ic - rows.start + mc)
                        .ok_or_else(fail)?;
                    if !macro_kernel(self.isa, &job, c_rows) {
                        return Err(fail());
                    }
                }
            }
        }
        Ok(())
    }
}
