//! The int8 GEMM's inner part: one thread's rows x column panels, tile by tile, with the
//! zero-point compensation and the sink (float epilogue or raw i32) applied per tile row.

use super::activation::Activation;
use super::arch_q::{self, TileIn};
use super::error::{KernelError, invalid};
use super::qgemm::{PANEL, QGemmParams};
use super::qpack::{QPackedB, QuantizedA};

const KERNEL: &str = "qgemm";
/// The tallest and widest tiles (for the accumulator buffer).
pub(crate) const MAX_MR: usize = 32;
pub(crate) const MAX_NV: usize = 4;

/// Where a tile's compensated i32 sums go.
pub(crate) trait Sink: Sync {
    type T: Copy + Default + Send + Sync;
    /// Writes columns `col0..col0 + vals.len()` of one row.
    fn write(&self, col0: usize, vals: &[i32], dst: &mut [Self::T]);

    /// Computes and writes a whole tile with the epilogue in registers, if this sink and
    /// level can (`f.out` starts at the tile's first element); false: the caller does it.
    fn fused(&self, _: &TileIn<'_>, _: &mut FusedTile<'_, Self::T>) -> bool {
        false
    }
}

/// One tile for [`Sink::fused`]: shape, columns `c0..c0 + cols`, rows' sums, compensation.
pub(crate) struct FusedTile<'a, T> {
    pub(crate) isa: super::qgemm::QIsa,
    pub(crate) mr: usize,
    pub(crate) nv: usize,
    pub(crate) c0: usize,
    pub(crate) comp: &'a [i32],
    pub(crate) zb: Option<&'a [i32]>,
    pub(crate) row_sums: &'a [i32],
    pub(crate) out: &'a mut [T],
    pub(crate) ldo: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

pub(crate) struct I32Sink;

impl Sink for I32Sink {
    type T = i32;
    fn write(&self, _: usize, vals: &[i32], dst: &mut [i32]) {
        dst.copy_from_slice(vals);
    }
}

pub(crate) struct F32Sink<'a> {
    pub(crate) scale: &'a [f32],
    pub(crate) bias: Option<&'a [f32]>,
    pub(crate) act: Activation,
    /// The f32 level the activation runs at: it is applied through `arch::bias_act`, compiled
    /// per level (applied here with the crate's baseline codegen, GELU was 20% of an int8
    /// MiniLM run, more than the AMX tiles).
    pub(crate) isa: super::isa::Isa,
}

impl Sink for F32Sink<'_> {
    type T = f32;
    fn write(&self, col0: usize, vals: &[i32], dst: &mut [f32]) {
        let scale = self.scale.get(col0..col0 + vals.len()).unwrap_or_default();
        for ((d, &v), &s) in dst.iter_mut().zip(vals).zip(scale) {
            *d = v as f32 * s;
        }
        if let Some(bias) = self.bias.and_then(|b| b.get(col0..col0 + vals.len())) {
            for (d, &b) in dst.iter_mut().zip(bias) {
                *d += b;
            }
        }
        if self.act != Activation::None {
            let n = dst.len();
            super::arch::bias_act(self.isa, dst, n, n, 0, super::activation::Bias::None, self.act);
        }
    }

    fn fused(&self, t: &TileIn<'_>, f: &mut FusedTile<'_, f32>) -> bool {
        let cols = f.c0..f.c0 + f.cols;
        let (Some(scale), bias) = (self.scale.get(cols.clone()), self.bias.map(|b| b.get(cols))) else { return false };
        if bias.is_some_and(|b| b.is_none()) {
            return false;
        }
        let mut e = arch_q::TileEpi {
            comp: f.comp,
            zb: f.zb,
            row_sums: f.row_sums,
            scale,
            bias: bias.flatten(),
            out: f.out,
            ldo: f.ldo,
            rows: f.rows,
            cols: f.cols,
        };
        if !arch_q::tile_f32(f.isa, f.mr, f.nv, t, &mut e) {
            return false;
        }
        if self.act != Activation::None
            && f.rows > 0
            && f.cols > 0
            && let Some(tile) = e.out.get_mut(..(f.rows - 1) * f.ldo + f.cols)
        {
            super::arch::bias_act(self.isa, tile, f.cols, f.ldo, 0, super::activation::Bias::None, self.act);
        }
        true
    }
}

/// Everything a part of the product reads.
pub(crate) struct Job<'a> {
    pub(crate) a: &'a QuantizedA,
    pub(crate) b: &'a QPackedB,
    /// Per column: `k za zb - za sum_k b` (wrapping).
    pub(crate) col_comp: Vec<i32>,
    pub(crate) zb_any: bool,
    pub(crate) params: QGemmParams,
}

/// Rows `rows` x column panels `panels` of the product into `out` (row `rows.start` and
/// column `panels.start * 16` at its origin, row stride `ldo`). `rows.start` is a multiple
/// of `mr`, so every tile lies inside A's padded rows.
pub(crate) fn part<S: Sink>(
    job: &Job<'_>,
    sink: &S,
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    out: &mut [S::T],
    ldo: usize,
) -> Result<(), KernelError> {
    let QGemmParams { isa, mr, nv, nc, .. } = job.params;
    let (a, b, n) = (job.a, job.b, job.b.n());
    let kg = b.kg();
    let col_base = panels.start * PANEL;
    let mut acc = [0i32; MAX_MR * MAX_NV * PANEL];
    let mut vals = [0i32; MAX_NV * PANEL];
    // The order of the tiles: nc == 0, each `nv`-panel B sliver (in L1) against every row
    // tile; else blocks of `nc` panels (in L2), every row tile across each block.
    let mut order = Vec::new();
    let chunk = |pb: usize, pe: usize| (pb..pe).step_by(nv).map(move |p| (p, nv.min(pe - p)));
    if nc == 0 {
        for (p, nvr) in chunk(panels.start, panels.end) {
            order.extend(rows.clone().step_by(mr).map(|r0| (r0, p, nvr)));
        }
    } else {
        for pb in panels.clone().step_by(nc) {
            for r0 in rows.clone().step_by(mr) {
                order.extend(chunk(pb, (pb + nc).min(panels.end)).map(|(p, nvr)| (r0, p, nvr)));
            }
        }
    }
    for (r0, p, nvr) in order {
        let (real, width) = (mr.min(rows.end - r0), nvr * PANEL);
        let t = TileIn { a: &a.data, a_off: r0 * a.lda, lda: a.lda, b: b.data(), b_off: p * kg * PANEL * 4, kg };
        let (c0, cols) = (p * PANEL, width.min(n - p * PANEL));
        let comp = job.col_comp.get(c0..c0 + cols).ok_or_else(|| invalid(KERNEL, "column sums"))?;
        let zbs = b.zero_points().get(c0..c0 + cols).ok_or_else(|| invalid(KERNEL, "zero points"))?;
        let at0 = (r0 - rows.start) * ldo + (c0 - col_base);
        let row_sums = a.row_sums.get(r0..r0 + real).ok_or_else(|| invalid(KERNEL, "row sums"))?;
        let dst = out.get_mut(at0..).ok_or_else(|| invalid(KERNEL, "C is too short"))?;
        let zb = job.zb_any.then_some(zbs);
        let mut f = FusedTile { isa, mr, nv: nvr, c0, comp, zb, row_sums, out: dst, ldo, rows: real, cols };
        if sink.fused(&t, &mut f) {
            continue;
        }
        let acc = &mut acc[..mr * width];
        if !arch_q::tile(isa, mr, nvr, &t, acc) {
            tile_portable(mr, nvr, &t, acc)?;
        }
        for (r, &rs) in row_sums.iter().enumerate() {
            let src = &acc[r * width..r * width + cols];
            let v = &mut vals[..cols];
            if job.zb_any {
                for (((v, &s), &cc), &zb) in v.iter_mut().zip(src).zip(comp).zip(zbs) {
                    *v = s.wrapping_add(cc).wrapping_sub(zb.wrapping_mul(rs));
                }
            } else {
                for ((v, &s), &cc) in v.iter_mut().zip(src).zip(comp) {
                    *v = s.wrapping_add(cc);
                }
            }
            let at = at0 + r * ldo;
            let dst = out.get_mut(at..at + cols).ok_or_else(|| invalid(KERNEL, "C is too short"))?;
            sink.write(c0, v, dst);
        }
    }
    if isa == super::qgemm::QIsa::Amx {
        super::arch_qamx::release();
    }
    Ok(())
}

/// The portable tile (any shape): `out[r * 16 nv + c] = sum_k a b`.
fn tile_portable(mr: usize, nv: usize, t: &TileIn<'_>, out: &mut [i32]) -> Result<(), KernelError> {
    let width = nv * PANEL;
    out.fill(0);
    let short = || invalid(KERNEL, "tile operands out of range");
    for r in 0..mr {
        let a_row = t.a.get(t.a_off + r * t.lda..t.a_off + r * t.lda + t.kg * 4).ok_or_else(short)?;
        let o_row = out.get_mut(r * width..(r + 1) * width).ok_or_else(short)?;
        for v in 0..nv {
            let panel = t.b.get(t.b_off + v * t.kg * 64..t.b_off + (v + 1) * t.kg * 64).ok_or_else(short)?;
            let o = &mut o_row[v * PANEL..(v + 1) * PANEL];
            for (a4, b64) in a_row.chunks_exact(4).zip(panel.chunks_exact(64)) {
                for (o, b4) in o.iter_mut().zip(b64.chunks_exact(4)) {
                    *o = o.wrapping_add(a4.iter().zip(b4).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum::<i32>());
                }
            }
        }
    }
    Ok(())
}
