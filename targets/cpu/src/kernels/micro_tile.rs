//! Register tiles of the microkernel backend: what one tile and one macro-kernel (a packed A
//! block times a packed B block) get, the loop over tiles with the fused epilogue, the
//! portable tile, and which tile each ISA runs on which panel width. The vector tiles are in
//! `arch_micro` (they need `unsafe`).

use super::activation::{Activation, Bias};
use super::isa::Isa;

/// One register tile: `kc` steps of A (a packed `[kc][mr]` panel, or with `a_rs > 0` rows
/// of A read in place) times a B panel slice (`kc` rows of stride `b_rs`), written to
/// columns `col..col + ncols` of each C row.
pub(crate) struct TileArgs<'a> {
    pub kc: usize,
    pub a: &'a [f32],
    /// 0: `a` is a packed panel; else the row stride of unit-stride rows of A read in place,
    /// of which `a_rows` exist (the tile reads the last one again for rows past them).
    pub a_rs: usize,
    pub a_rows: usize,
    pub b: &'a [f32],
    pub b_rs: usize,
    pub col: usize,
    pub ncols: usize,
    pub alpha: f32,
    /// 0 writes C without reading it.
    pub beta: f32,
    /// The epilogue, on the last k block: a tile that applies it in registers returns
    /// [`Tiled::Finished`], else [`macro_body`] applies it to the stored tile.
    pub epi: Option<TileEpi<'a>>,
    /// Memory to bring into L2 while the tile runs (a share of the next B sliver), for tiles
    /// that prefetch as they go (see [`macro_body`]); empty otherwise.
    pub ahead: &'a [f32],
}

/// Bias and activation of one tile: a per-column bias starts at the tile's first column, a
/// per-row bias is indexed from `row0` (the tile's first row in the whole product).
#[derive(Clone, Copy)]
pub(crate) struct TileEpi<'a> {
    pub bias: Bias<'a>,
    pub act: Activation,
    pub row0: usize,
}

/// What a tile did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tiled {
    /// The operands did not fit; nothing was written.
    Misfit,
    /// `alpha A B + beta C` is stored; the epilogue (if any) remains.
    Stored,
    /// Stored with the epilogue applied.
    Finished,
}

/// Bias and activation of the last k block; `bias` starts at the block's first column.
#[derive(Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    pub bias: Bias<'a>,
    pub act: Activation,
    /// Row of C (in the whole product) of the block's first row.
    pub row0: usize,
    /// The ISA the epilogue is compiled for (`arch::bias_act`): `macro_body` runs inside a
    /// closure, which does not inherit the caller's target features, so an inlined epilogue
    /// would run at the crate's baseline codegen (GELU's erf polynomial 13% of a MiniLM run).
    pub isa: super::isa::Isa,
}

/// An A block (`mc` rows) times a packed B block (`nc` columns) over one k block.
pub(crate) struct MacroJob<'a> {
    /// Packed row panels (`a_rs == 0`), or the block's first row of A in place (row stride
    /// `a_rs`).
    pub a: &'a [f32],
    pub a_rs: usize,
    /// Panel `j` of the block starts at `j * b_panel_stride + b_off`, rows `b_rs` apart.
    pub b: &'a [f32],
    pub b_panel_stride: usize,
    pub b_off: usize,
    pub b_rs: usize,
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

/// k steps between two lines of [`TileArgs::ahead`] that a spreading tile prefetches (a
/// step is 12-14 cycles; a prefetch to DRAM holds a line-fill buffer for hundreds).
pub(crate) const FAR_EVERY: usize = 4;

/// Floats of an A block up to which [`macro_body`] runs column slivers outer (256K floats,
/// 1 MiB: half a 2 MiB L2, so a transformer's 128 x 1536 block qualifies: cold-B
/// 128 x 1536 x 384 on 2 threads 63-64% -> 67-69% of the FMA peak in two interleaved runs,
/// warm 83% -> 83% and 87%). Above it, 1024^3 lost 25% with columns outer.
const A_BLOCK_FOR_COLUMNS_OUTER: usize = 256 << 10;

/// Whether [`macro_body`] runs column slivers outer on an `mc x kc` A block.
pub(crate) fn columns_outer(mc: usize, kc: usize) -> bool {
    mc * kc <= A_BLOCK_FOR_COLUMNS_OUTER
}

/// Every tile of a macro job, in an order chosen by the A block's size (below). False when a
/// tile did not fit its operands. `spread`: the tile prefetches its [`TileArgs::ahead`] a
/// line every few k steps (the AVX-512 tiles); else the share is prefetched before the tile.
#[inline(always)]
pub(crate) fn macro_body<F>(job: &MacroJob<'_>, c: &mut [&mut [f32]], spread: bool, mut tile: F) -> bool
where
    F: FnMut(&TileArgs<'_>, &mut [&mut [f32]]) -> Tiled,
{
    let (mr, nr, sub, kc) = (job.mr, job.nr, job.sub, job.kc);
    if mr == 0 || sub == 0 || nr % sub != 0 || c.len() < job.mc {
        return false;
    }
    let mut one = |i0: usize, col: usize, ahead: &[f32]| -> bool {
        let (rows, ncols) = (mr.min(job.mc - i0), sub.min(job.nc - col));
        let b_at = col / nr * job.b_panel_stride + job.b_off + col % nr;
        let a_at = if job.a_rs == 0 { i0 * kc } else { i0 * job.a_rs };
        let (Some(a), Some(b), Some(c_rows)) = (job.a.get(a_at..), job.b.get(b_at..), c.get_mut(i0..i0 + rows)) else {
            return false;
        };
        let epi = job.epi.map(|e| TileEpi {
            bias: match e.bias {
                Bias::PerCol(v) => Bias::PerCol(v.get(col..).unwrap_or(&[])),
                other => other,
            },
            act: e.act,
            row0: e.row0 + i0,
        });
        let t = TileArgs {
            kc,
            a,
            a_rs: job.a_rs,
            a_rows: rows,
            b,
            b_rs: job.b_rs,
            col: job.col0 + col,
            ncols,
            alpha: job.alpha,
            beta: job.beta,
            epi,
            ahead,
        };
        match tile(&t, c_rows) {
            Tiled::Misfit => return false,
            Tiled::Finished => {}
            Tiled::Stored => {
                if let (Some(te), Some(e)) = (epi, job.epi)
                    && !super::arch::bias_act_rows(e.isa, c_rows, (t.col, ncols), te.row0, te.bias, te.act)
                {
                    return false;
                }
            }
        }
        true
    };
    // A large A block: row tiles outer (each A sliver stays in L1, the B block in L2).
    if !columns_outer(job.mc, kc) {
        for i0 in (0..job.mc).step_by(mr) {
            for col in (0..job.nc).step_by(sub) {
                if !one(i0, col, &[]) {
                    return false;
                }
            }
        }
        return true;
    }
    // A small A block (a transformer's 128 rows): column slivers outer, row tiles inner. Each
    // B sliver (kc x sub) is read from memory once and used by every row tile while A stays
    // in L2; meanwhile the next sliver is prefetched into L2, a share per row tile, so a cold
    // B (weights streamed from L3 or DRAM every run) arrives while the current sliver computes
    // instead of stalling the first tile. Spread over the tile's k steps rather than issued
    // at its start: a burst of prefetches to DRAM holds every line-fill buffer for the
    // memory's latency, and the tile's own loads from L2 wait behind them (a cold-B
    // 128 x 384 x 1536 product on 2 threads went from 62% to 73% of the FMA peak).
    let tiles = job.mc.div_ceil(mr).max(1);
    for col in (0..job.nc).step_by(sub) {
        let next = col + sub;
        let ahead: &[f32] = if next < job.nc {
            let at = next / nr * job.b_panel_stride + job.b_off + next % nr;
            job.b.get(at..).map_or(&[], |b| &b[..b.len().min((kc - 1) * job.b_rs + sub)])
        } else {
            &[]
        };
        let share = ahead.len().div_ceil(tiles).div_ceil(16) * 16;
        for (t, i0) in (0..job.mc).step_by(mr).enumerate() {
            let from = (t * share).min(ahead.len());
            let part = &ahead[from..(from + share).min(ahead.len())];
            // What the tile cannot spread over its k steps goes before it.
            let (spread_part, burst) = part.split_at(if spread { part.len().min(kc / FAR_EVERY * 16) } else { 0 });
            super::arch_micro::prefetch_l2(burst);
            if !one(i0, col, spread_part) {
                return false;
            }
        }
    }
    true
}

/// Whether a tile's operands hold `mr` rows of A and `w` columns of B (row stride `b_rs`)
/// over `kc` steps, and C at most `mr` rows of at least `col + ncols` elements.
pub(crate) fn tile_fits(t: &TileArgs<'_>, c: &[&mut [f32]], mr: usize, w: usize) -> bool {
    let a_fits =
        if t.a_rs == 0 { t.a.len() >= t.kc * mr } else { t.a_rows > 0 && t.a_rows <= mr && t.a.len() >= (t.a_rows - 1) * t.a_rs + t.kc };
    t.kc > 0
        && a_fits
        && t.ncols <= w
        && t.b_rs >= w
        && c.len() <= mr
        && t.b.len() >= (t.kc - 1) * t.b_rs + w
        && c.iter().all(|row| row.len() >= t.col + t.ncols)
}

const PORTABLE_MR: usize = 6;
const PORTABLE_W: usize = 4;

/// One k step of the portable tile, written as 4-lane groups so it vectorises on any
/// 128-bit SIMD baseline.
#[inline(always)]
fn portable_step(acc: &mut [[f32; PORTABLE_W]; PORTABLE_MR], ap: &[f32; PORTABLE_MR], bp: &[f32; PORTABLE_W]) {
    for (acc_r, &av) in acc.iter_mut().zip(ap) {
        for (s4, b4) in acc_r.chunks_exact_mut(4).zip(bp.chunks_exact(4)) {
            let a4 = [av; 4];
            for l in 0..4 {
                s4[l] = if cfg!(target_arch = "aarch64") { a4[l].mul_add(b4[l], s4[l]) } else { s4[l] + a4[l] * b4[l] };
            }
        }
    }
}

/// The portable `6 x 4` tile (the compiler vectorises it for the baseline ISA).
pub(crate) fn tile_portable(t: &TileArgs<'_>, c: &mut [&mut [f32]]) -> Tiled {
    const MR: usize = PORTABLE_MR;
    const W: usize = PORTABLE_W;
    if t.a_rs != 0 || !tile_fits(t, c, MR, W) {
        return Tiled::Misfit;
    }
    let mut acc = [[0.0f32; W]; MR];
    for (ap, bp) in t.a.chunks_exact(MR).zip(t.b.chunks(t.b_rs)).take(t.kc) {
        // `tile_fits` checked that every A step and B row exists: the conversions succeed.
        if let (Ok(ap), Some(Ok(bp))) = (<[f32; MR]>::try_from(ap), bp.get(..W).map(<[f32; W]>::try_from)) {
            portable_step(&mut acc, &ap, &bp);
        }
    }
    for (row, acc_r) in c.iter_mut().zip(&acc) {
        for (x, s) in row[t.col..t.col + t.ncols].iter_mut().zip(acc_r) {
            *x = if t.beta == 0.0 { t.alpha * s } else { t.alpha * s + t.beta * *x };
        }
    }
    Tiled::Stored
}

/// Panel width B is packed in for `isa` and `n` columns: for AVX-512 the width (8 x 48,
/// 6 x 64 or 12 x 32 tiles) that pads `n` least, 48 on ties; 16 otherwise.
pub(crate) fn preferred_nr(isa: Isa, n: usize) -> usize {
    match isa.effective() {
        Isa::Avx512 => [48, 64, 32].into_iter().min_by_key(|&nr| n.div_ceil(nr) * nr - n).unwrap_or(48),
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
