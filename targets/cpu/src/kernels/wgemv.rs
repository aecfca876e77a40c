//! The few-rows path of [`wgemm`](super::wgemm) ([`WPath::Gemv`](super::WPath::Gemv)): the
//! low-precision panels are read directly, once per call, `KB` rows of four panels (64
//! columns) at a time dequantized into an L1 block that every row of X then runs against
//! (four accumulator vectors per row, two sets for a single row). Bandwidth-bound like any
//! GEMV, so reading 2, 1 or half a byte per weight instead of 4 is the gain. Compiled per ISA
//! by `arch::wgemv` (the loops vectorise): the portable and AVX2 build; AVX-512 has its own
//! tile converting in registers (`arch_wgemv`).

use super::activation::{Activation, Bias, bias_act_body};
use super::wpack::{WPANEL, WPacked};

/// Panels per column block.
const GP: usize = 4;
/// Columns per block: four f32 vectors of 16.
pub(crate) const GW: usize = GP * WPANEL;
/// Rows of k dequantized per step (16 KiB of f32, in L1).
const KB: usize = 64;

/// One product: `x` holds `m` rows of `k` (already rounded to bf16 for a bf16 compute).
pub(crate) struct GemvJob<'a> {
    pub w: &'a WPacked,
    pub x: &'a [f32],
    pub m: usize,
    pub bias: Option<&'a [f32]>,
    pub act: Activation,
}

#[inline(always)]
fn madd(fma: bool, a: f32, b: f32, c: f32) -> f32 {
    if fma { a.mul_add(b, c) } else { c + a * b }
}

/// Rows `i0..i1` and columns `c0..c1` (`c0` a multiple of [`GW`]) into `c` (row slices
/// starting at column `c0`), bias and activation applied. None when the operands do not fit.
#[inline(always)]
pub(crate) fn gemv_body(
    fma: bool,
    job: &GemvJob<'_>,
    (i0, i1): (usize, usize),
    (c0, c1): (usize, usize),
    c: &mut [&mut [f32]],
) -> Option<()> {
    let (w, k) = (job.w, job.w.k());
    let bias_fits = job.bias.is_none_or(|b| b.len() >= c1);
    if i0 > i1 || c.len() != i1 - i0 || i1 > job.m || job.x.len() < job.m * k || !c0.is_multiple_of(GW) || c1 > w.n() || !bias_fits {
        return None;
    }
    let (x, m) = (job.x.get(i0 * k..)?, i1 - i0);
    let mut wbuf = [[0f32; GW]; KB];
    let mut acc = vec![[0f32; GW]; m];
    for g0 in (c0..c1).step_by(GW) {
        let width = GW.min(c1 - g0);
        let np = width.div_ceil(WPANEL);
        if np < GP {
            wbuf.iter_mut().for_each(|row| row.fill(0.0));
        }
        acc.iter_mut().for_each(|a| a.fill(0.0));
        let mut r0 = 0;
        while r0 < k {
            let kb = KB.min(k - r0).min((r0 / w.group() + 1) * w.group() - r0);
            let flat = wbuf.as_flattened_mut();
            for q in 0..np {
                w.dequant_rows(g0 / WPANEL + q, r0, kb, flat.get_mut(q * WPANEL..)?, GW)?;
            }
            let wb = &wbuf[..kb];
            let mut i = 0;
            while i + 4 <= m {
                rows::<4>(fma, x, k, (i, r0), wb, &mut acc[i..i + 4]);
                i += 4;
            }
            if i + 2 <= m {
                rows::<2>(fma, x, k, (i, r0), wb, &mut acc[i..i + 2]);
                i += 2;
            }
            if i < m {
                row_split(fma, &x[i * k + r0..][..kb], wb, &mut acc[i]);
            }
            r0 += kb;
        }
        for (i, row) in c.iter_mut().enumerate() {
            let out = row.get_mut(g0 - c0..g0 - c0 + width)?;
            out.copy_from_slice(&acc[i][..width]);
            let bias = match job.bias {
                Some(b) => Bias::PerCol(b.get(g0..)?),
                None => Bias::None,
            };
            bias_act_body(out, width, width, i0 + i, bias, job.act);
        }
    }
    Some(())
}

/// `R` rows of X (from row `i0`, columns `r0..`) against a dequantized block.
#[inline(always)]
fn rows<const R: usize>(fma: bool, x: &[f32], k: usize, (i0, r0): (usize, usize), w: &[[f32; GW]], acc: &mut [[f32; GW]]) {
    let xs: [&[f32]; R] = std::array::from_fn(|r| &x[(i0 + r) * k + r0..][..w.len()]);
    let mut a: [[f32; GW]; R] = std::array::from_fn(|r| acc[r]);
    for (kk, wr) in w.iter().enumerate() {
        for r in 0..R {
            let xv = xs[r][kk];
            for j in 0..GW {
                a[r][j] = madd(fma, xv, wr[j], a[r][j]);
            }
        }
    }
    acc[..R].copy_from_slice(&a);
}

/// One row, with even and odd k in separate accumulators (eight independent chains).
#[inline(always)]
fn row_split(fma: bool, x: &[f32], w: &[[f32; GW]], acc: &mut [f32; GW]) {
    let (mut even, mut odd) = (*acc, [0f32; GW]);
    let mut pairs = w.chunks_exact(2);
    for (xp, wp) in x.chunks_exact(2).zip(pairs.by_ref()) {
        for j in 0..GW {
            even[j] = madd(fma, xp[0], wp[0][j], even[j]);
            odd[j] = madd(fma, xp[1], wp[1][j], odd[j]);
        }
    }
    if let (Some(wl), Some(&xl)) = (pairs.remainder().first(), x.get(w.len() - 1).filter(|_| w.len() % 2 == 1)) {
        for j in 0..GW {
            even[j] = madd(fma, xl, wl[j], even[j]);
        }
    }
    for j in 0..GW {
        acc[j] = even[j] + odd[j];
    }
}
