//! `unsafe` of the AMX-BF16 tile of [`wgemm`](super::wgemm) ([`WPath::Amx`](super::WPath::Amx)):
//! `tdpbf16ps` on the operands of the AVX512-BF16 tile (X as bf16 pairs, rows of `ldp` pairs;
//! weights as bf16 pair panels, which are AMX B tiles as packed: 16 pair rows of 64 bytes per
//! step), 32 x 32 f32 per pass in four C tiles. The permission request and the tile
//! configuration are the int8 AMX tile's (`arch_qamx`), shared so the per-thread state stays
//! consistent.
//!
//! Why `unsafe` is unavoidable here: the AMX instructions are inline assembly (no stable
//! intrinsics) reading and writing memory through pointers. [`part`] checks every extent
//! once before the loop; the SAFETY comments say which check covers which access, and the
//! tile runs only after `arch_qamx::available_bf16` confirmed AMX-BF16 and the permission.
#![allow(unsafe_code)]

use super::arch_qamx::{self, Dot};
use super::arch_wbf16::Bf16Job;
use super::wpack::WPANEL;

/// Rows of A (and C) per pass: two 16-row tiles.
pub(crate) const MR: usize = 32;
/// bf16 pairs per tile step (one 64-byte A tile row, sixteen B tile rows).
const KSTEP: usize = 16;

/// Whether the AMX-BF16 tile can run here.
pub(crate) fn available() -> bool {
    arch_qamx::available_bf16()
}

/// Rows `rows` (`rows.start` a multiple of [`MR`]) and columns `cols` (`cols.start` a
/// multiple of 16) into `c` (row slices starting at `cols.start`). A must hold whole 32-row
/// tiles past `rows.end` and `ldp` a multiple of 16 (the packing rounds bf16 pairs up to it).
/// Releases the tile state at the end. None when AMX-BF16 is missing or the operands do not
/// fit.
pub(crate) fn part(job: &Bf16Job<'_>, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>, c: &mut [&mut [f32]]) -> Option<()> {
    let (p0, p1) = (cols.start / WPANEL, cols.end.div_ceil(WPANEL));
    let (_, pstride) = job.extents(&rows, (p0, p1), MR)?;
    if !available() || !job.ldp.is_multiple_of(KSTEP) || !rows.start.is_multiple_of(MR) || c.len() < rows.len() {
        return None;
    }
    if !arch_qamx::configure() {
        return None;
    }
    let steps = job.ldp / KSTEP;
    let mut out = Some(());
    'rows: for i0 in rows.clone().step_by(MR) {
        for pg in (p0..p1).step_by(2) {
            let nv = 2.min(p1 - pg);
            let mut tile = [[0f32; 2 * WPANEL]; MR];
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            // SAFETY: `extents` checked A holds `ldp` pairs (4 ldp bytes) for every row up to
            // the 32-row tile past `rows.end`, and the weights `nv <= p1 - pg` panels of
            // `pstride` u16 (64 ldp bytes) from panel pg; `steps * 16 = ldp`, so step s reads
            // A bytes 64 s .. 64 s + 64 of each row and B bytes 1024 s .. + 1024 of each panel,
            // inside both. `tile` holds 32 rows of 32 f32. AMX-BF16 is available, configured.
            unsafe {
                let a = job.a.as_ptr().add(i0 * job.ldp).cast();
                let b = job.w.halves().as_ptr().add(pg * pstride).cast();
                arch_qamx::pass(Dot::Bf16, nv, (a, 4 * job.ldp), (b, 2 * pstride), steps, (tile.as_mut_ptr().cast(), 2 * WPANEL * 4));
            }
            let (col, width) = (pg * WPANEL, ((pg + nv) * WPANEL).min(cols.end) - pg * WPANEL);
            if job.store((i0, &rows, MR), (col, width, cols.start), tile.as_flattened(), 2 * WPANEL, c).is_none() {
                out = None;
                break 'rows;
            }
        }
    }
    arch_qamx::release();
    out
}
