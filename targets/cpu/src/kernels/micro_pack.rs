//! Packing for the microkernel backend: A blocks into k-major row panels, B blocks into
//! row-major column panels, both zero-padded to whole panels. `None` if an element the
//! block needs lies outside the operand (callers check sizes first; this is the last guard).

/// A matrix whose row `i` is the unit-stride run starting at `data[offs[i]]`: the rows of an
/// implicit GEMM (a convolution's shifted input rows), packed without a column buffer.
#[derive(Clone, Copy)]
pub(crate) struct RowTable<'a> {
    pub data: &'a [f32],
    pub offs: &'a [usize],
}

/// A matrix view: element `(i, j)` at `i rs + j cs`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Packs rows `ic..ic + mc`, columns `pc..pc + kc` of `op(A)` into `dst`: panel `q` holds
/// rows `ic + q mr ..` as `[kc][mr]`. Compiled per ISA by `arch::pack_a`.
#[inline(always)]
pub(crate) fn pack_a_body(
    _fma: bool,
    a: &Strided<'_>,
    (ic, mc): (usize, usize),
    (pc, kc): (usize, usize),
    mr: usize,
    dst: &mut [f32],
) -> Option<()> {
    if dst.len() < mc.div_ceil(mr) * kc * mr || mr == 0 || kc == 0 {
        return None;
    }
    for (q, panel) in dst.chunks_exact_mut(kc * mr).take(mc.div_ceil(mr)).enumerate() {
        let i0 = ic + q * mr;
        let rows = mr.min(ic + mc - i0);
        if a.cs == 1 {
            match mr {
                4 => rows_panel::<4>(a, i0, rows, (pc, kc), panel)?,
                6 => rows_panel::<6>(a, i0, rows, (pc, kc), panel)?,
                8 => rows_panel::<8>(a, i0, rows, (pc, kc), panel)?,
                12 => rows_panel::<12>(a, i0, rows, (pc, kc), panel)?,
                14 => rows_panel::<14>(a, i0, rows, (pc, kc), panel)?,
                _ => any_panel(a, i0, rows, (pc, kc), mr, panel)?,
            }
        } else if a.rs == 1 {
            for (p, d) in panel.chunks_exact_mut(mr).enumerate() {
                let start = (pc + p) * a.cs + i0;
                d[..rows].copy_from_slice(a.data.get(start..start + rows)?);
                d[rows..].fill(0.0);
            }
        } else {
            any_panel(a, i0, rows, (pc, kc), mr, panel)?;
        }
    }
    Some(())
}

/// One A panel from unit-stride rows: 8 columns of `MR` rows at a time, transposed in
/// registers (each source row is read once, each panel row written once).
#[inline(always)]
fn rows_panel<const MR: usize>(a: &Strided<'_>, i0: usize, rows: usize, (pc, kc): (usize, usize), panel: &mut [f32]) -> Option<()> {
    let mut src: [&[f32]; MR] = [&[]; MR];
    for (r, s) in src.iter_mut().enumerate().take(rows) {
        let start = (i0 + r) * a.rs + pc;
        *s = a.data.get(start..start + kc)?;
    }
    let mut out = panel.chunks_exact_mut(8 * MR);
    for (p0, d) in (0..kc).step_by(8).zip(out.by_ref()) {
        let mut blk = [[0.0f32; 8]; MR];
        for (b, s) in blk.iter_mut().zip(&src).take(rows) {
            b.copy_from_slice(s.get(p0..p0 + 8)?);
        }
        for (q, d) in d.chunks_exact_mut(MR).enumerate() {
            for (x, b) in d.iter_mut().zip(&blk) {
                *x = b[q];
            }
        }
    }
    // The last kc % 8 columns.
    let tail = kc - kc % 8;
    for (p, d) in (tail..kc).zip(out.into_remainder().chunks_exact_mut(MR)) {
        for (r, x) in d.iter_mut().enumerate() {
            *x = src[r].get(p).copied().unwrap_or(0.0);
        }
    }
    Some(())
}

/// One A panel from any strides.
fn any_panel(a: &Strided<'_>, i0: usize, rows: usize, (pc, kc): (usize, usize), mr: usize, panel: &mut [f32]) -> Option<()> {
    for (p, d) in panel.chunks_exact_mut(mr).take(kc).enumerate() {
        for (r, x) in d.iter_mut().enumerate() {
            *x = if r < rows { *a.data.get((i0 + r) * a.rs + (pc + p) * a.cs)? } else { 0.0 };
        }
    }
    Some(())
}

/// Packs rows `pc..pc + kc`, columns `jc..jc + nc` of `op(B)` into `dst`: panel `q` holds
/// columns `jc + q nr ..` as `[kc][nr]`. Compiled per ISA by `arch::pack_b`.
#[inline(always)]
pub(crate) fn pack_b_body(
    _fma: bool,
    b: &Strided<'_>,
    (pc, kc): (usize, usize),
    (jc, nc): (usize, usize),
    nr: usize,
    dst: &mut [f32],
) -> Option<()> {
    if dst.len() < nc.div_ceil(nr) * kc * nr || nr == 0 || kc == 0 {
        return None;
    }
    let (data, rs, cs) = (b.data, b.rs, b.cs);
    // Whole panels of a row-major B: row by row (sequential reads, one write stream per panel).
    let full = if cs == 1 && matches!(nr, 16 | 32 | 48 | 64) { nc / nr } else { 0 };
    if full > 0 {
        let rows = (data, rs, (pc, kc), jc, full);
        match nr {
            16 => full_panels::<16>(rows, dst)?,
            32 => full_panels::<32>(rows, dst)?,
            48 => full_panels::<48>(rows, dst)?,
            _ => full_panels::<64>(rows, dst)?,
        }
    }
    for (q, panel) in dst.chunks_exact_mut(kc * nr).take(nc.div_ceil(nr)).enumerate().skip(full) {
        let j0 = jc + q * nr;
        let w = nr.min(jc + nc - j0);
        if cs == 1 {
            for (p, d) in panel.chunks_exact_mut(nr).enumerate() {
                let start = (pc + p) * rs + j0;
                d[..w].copy_from_slice(data.get(start..start + w)?);
                d[w..].fill(0.0);
            }
        } else if rs == 1 && matches!(nr, 16 | 32 | 48 | 64) {
            // B stored transposed: its rows are the panel's columns, which is how A panels
            // are packed from row-major A (with `nr` for `mr`).
            let bt = Strided { data, rs: cs, cs: 1 };
            match nr {
                16 => rows_panel::<16>(&bt, j0, w, (pc, kc), panel)?,
                32 => rows_panel::<32>(&bt, j0, w, (pc, kc), panel)?,
                48 => rows_panel::<48>(&bt, j0, w, (pc, kc), panel)?,
                _ => rows_panel::<64>(&bt, j0, w, (pc, kc), panel)?,
            }
        } else {
            for (p, d) in panel.chunks_exact_mut(nr).enumerate() {
                for (x, v) in d.iter_mut().enumerate() {
                    *v = if x < w { *data.get((pc + p) * rs + (j0 + x) * cs)? } else { 0.0 };
                }
            }
        }
    }
    Some(())
}

/// The first `full` panels of width `NR` from unit-stride rows of B, row by row
/// (fixed-size copies).
#[inline(always)]
fn full_panels<const NR: usize>(
    (data, rs, (pc, kc), jc, full): (&[f32], usize, (usize, usize), usize, usize),
    dst: &mut [f32],
) -> Option<()> {
    for p in 0..kc {
        let start = (pc + p) * rs + jc;
        let row = data.get(start..start + full * NR)?;
        for (q, src) in row.chunks_exact(NR).enumerate() {
            let at = q * kc * NR + p * NR;
            dst.get_mut(at..at + NR)?.copy_from_slice(src);
        }
    }
    Some(())
}

/// Packs rows `pc..pc + kc`, columns `jc..jc + nc` of a [`RowTable`] B into `dst` as
/// [`pack_b_body`] does. Compiled per ISA by `arch::pack_b_rows`.
#[inline(always)]
pub(crate) fn pack_b_rows_body(
    _fma: bool,
    b: &RowTable<'_>,
    (pc, kc): (usize, usize),
    (jc, nc): (usize, usize),
    nr: usize,
    dst: &mut [f32],
) -> Option<()> {
    if dst.len() < nc.div_ceil(nr) * kc * nr || kc == 0 {
        return None;
    }
    match nr {
        16 => rows_table::<16>(b, (pc, kc), (jc, nc), dst),
        32 => rows_table::<32>(b, (pc, kc), (jc, nc), dst),
        48 => rows_table::<48>(b, (pc, kc), (jc, nc), dst),
        64 => rows_table::<64>(b, (pc, kc), (jc, nc), dst),
        _ => None,
    }
}

#[inline(always)]
fn rows_table<const NR: usize>(b: &RowTable<'_>, (pc, kc): (usize, usize), (jc, nc): (usize, usize), dst: &mut [f32]) -> Option<()> {
    let full = nc / NR;
    for p in 0..kc {
        let start = b.offs.get(pc + p)? + jc;
        let row = b.data.get(start..start + nc)?;
        for (q, src) in row.chunks_exact(NR).enumerate() {
            let at = q * kc * NR + p * NR;
            dst.get_mut(at..at + NR)?.copy_from_slice(src);
        }
        let w = nc - full * NR;
        if w > 0 {
            let at = full * kc * NR + p * NR;
            let d = dst.get_mut(at..at + NR)?;
            d[..w].copy_from_slice(&row[full * NR..]);
            d[w..].fill(0.0);
        }
    }
    Some(())
}
