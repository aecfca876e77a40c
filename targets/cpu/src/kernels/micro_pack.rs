//! Packing for the microkernel backend: A blocks into k-major row panels, B blocks into
//! row-major column panels, both zero-padded to whole panels. `None` if an element the
//! block needs lies outside the operand (callers check sizes first; this is the last guard).

/// Packs rows `ic..ic + mc`, columns `pc..pc + kc` of `op(A)` (element `(i, p)` at
/// `i a_rs + p a_cs`) into `dst`: panel `q` holds rows `ic + q mr ..` as `[kc][mr]`.
pub(crate) fn pack_a(
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    (ic, mc): (usize, usize),
    (pc, kc): (usize, usize),
    mr: usize,
    dst: &mut [f32],
) -> Option<()> {
    if dst.len() < mc.div_ceil(mr) * kc * mr || mr == 0 || kc == 0 {
        return None;
    }
    for (q, panel) in dst
        .chunks_exact_mut(kc * mr)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        let i0 = ic + q * mr;
        let rows = mr.min(ic + mc - i0);
        if a_cs == 1 {
            for r in 0..mr {
                if r < rows {
                    let start = (i0 + r) * a_rs + pc;
                    let src = a.get(start..start + kc)?;
                    for (d, &v) in panel.chunks_exact_mut(mr).zip(src) {
                        d[r] = v;
                    }
                } else {
                    panel.chunks_exact_mut(mr).for_each(|d| d[r] = 0.0);
                }
            }
        } else if a_rs == 1 {
            for (p, d) in panel.chunks_exact_mut(mr).enumerate() {
                let start = (pc + p) * a_cs + i0;
                d[..rows].copy_from_slice(a.get(start..start + rows)?);
                d[rows..].fill(0.0);
            }
        } else {
            for (p, d) in panel.chunks_exact_mut(mr).enumerate() {
                for (r, x) in d.iter_mut().enumerate() {
                    *x = if r < rows {
                        *a.get((i0 + r) * a_rs + (pc + p) * a_cs)?
                    } else {
                        0.0
                    };
                }
            }
        }
    }
    Some(())
}

/// Packs rows `pc..pc + kc`, columns `jc..jc + nc` of `op(B)` (element `(p, j)` at
/// `p rs + j cs`) into `dst`: panel `q` holds columns `jc + q nr ..` as `[kc][nr]`.
pub(crate) fn pack_b_panels(
    b: &[f32],
    rs: usize,
    cs: usize,
    (pc, kc): (usize, usize),
    (jc, nc): (usize, usize),
    nr: usize,
    dst: &mut [f32],
) -> Option<()> {
    if dst.len() < nc.div_ceil(nr) * kc * nr || nr == 0 || kc == 0 {
        return None;
    }
    for (q, panel) in dst
        .chunks_exact_mut(kc * nr)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let j0 = jc + q * nr;
        let w = nr.min(jc + nc - j0);
        if cs == 1 {
            for (p, d) in panel.chunks_exact_mut(nr).enumerate() {
                let start = (pc + p) * rs + j0;
                d[..w].copy_from_slice(b.get(start..start + w)?);
                d[w..].fill(0.0);
            }
        } else if rs == 1 {
            // B stored transposed: read each column's k run once, in groups of 8 columns so
            // the panel rows being written stay few.
            for g in (0..nr).step_by(8) {
                let mut src: [&[f32]; 8] = [&[]; 8];
                for (x, s) in src.iter_mut().enumerate() {
                    if g + x < w {
                        let start = (j0 + g + x) * cs + pc;
                        *s = b.get(start..start + kc)?;
                    }
                }
                for (p, d) in panel.chunks_exact_mut(nr).enumerate() {
                    for (x, s) in src.iter().enumerate() {
                        if let Some(slot) = d.get_mut(g + x) {
                            *slot = s.get(p).copied().unwrap_or(0.0);
                        }
                    }
                }
            }
        } else {
            for (p, d) in panel.chunks_exact_mut(nr).enumerate() {
                for (x, v) in d.iter_mut().enumerate() {
                    *v = if x < w {
                        *b.get((pc + p) * rs + (j0 + x) * cs)?
                    } else {
                        0.0
                    };
                }
            }
        }
    }
    Some(())
}
