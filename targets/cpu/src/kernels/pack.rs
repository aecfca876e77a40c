//! Pre-packing constant B (weights) once, and GEMM entry points that take packed B.
//!
//! The `gemm` crate has no API for caller-packed operands: it packs internally on every call.
//! What it reads fastest without packing, for a row-major C, is a B stored row-major `[k, n]`
//! (in its transposed view that B becomes a unit-stride LHS, used in place when `n` is a
//! multiple of the vector width). So [`PackedLayout::RowMajor`] resolves the transpose once (an
//! ONNX `Gemm` with `transB = 1` or a PyTorch `Linear` weight `[n, k]` is stored transposed)
//! and nothing else. [`PackedLayout::Panel`] is what our microkernels read: column panels
//! `[n / nr][k][nr]`, zero-padded, 64-byte aligned, so no call packs B again.

use super::activation::Bias;
use super::arch;
use super::arch_micro::AlignedVec;
use super::error::{KernelError, check_matrix, checked_product, invalid};
use super::gemm::{GemmBackend, GemmParams, GemmSpec, sgemm};
use super::isa::Isa;
use super::micro::{self, BSource};
use super::micro_pack::Strided;

const KERNEL: &str = "pack_b";

/// How a [`PackedB`] stores its `k x n` matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PackedLayout {
    /// Dense row-major `[k, n]`.
    RowMajor,
    /// Column panels `[n / nr][k][nr]` (zero-padded) for [`GemmBackend::Micro`]; `nr` is 16,
    /// 32, 48 or 64 (every ISA's tile reads each). [`sgemm_packed`] runs the micro backend on
    /// this layout whatever `params.backend` says (with its threads and ISA).
    Panel { nr: usize },
}

/// Layouts a GEMM backend here can consume; the first is the default: panels of 48 where
/// the micro backend is the default GEMM (AVX-512, see [`gemm_candidates`](super::gemm_candidates);
/// [`packed_layout_for`] picks the width for a given `n`), else row-major.
pub fn packed_layout_candidates() -> Vec<PackedLayout> {
    let panels = [48, 64, 32, 16].map(|nr| PackedLayout::Panel { nr });
    let mut v = vec![PackedLayout::RowMajor];
    if Isa::best() == Isa::Avx512 {
        v.splice(0..0, panels);
    } else {
        v.extend(panels);
    }
    v
}

/// The layout `params` reads fastest for a B of `n` columns: panels of the width its ISA's
/// tile prefers for `n` for the micro backend, row-major for the others.
pub fn packed_layout_for(params: &GemmParams, n: usize) -> PackedLayout {
    match params.backend {
        GemmBackend::Micro => PackedLayout::Panel { nr: micro::preferred_nr(params.isa, n) },
        GemmBackend::Library | GemmBackend::Blocked => PackedLayout::RowMajor,
    }
}

/// A constant `k x n` right-hand operand packed once for many GEMMs.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedB {
    k: usize,
    n: usize,
    layout: PackedLayout,
    data: AlignedVec,
}

impl PackedB {
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn layout(&self) -> PackedLayout {
        self.layout
    }
    /// The packed elements (layout-specific order).
    pub fn data(&self) -> &[f32] {
        self.data.as_slice()
    }
}

/// Packs `op(B)` (a `k x n` matrix; `B` is stored `[n, k]` when `trans_b`, with row stride
/// `ldb`, 0 meaning dense) into `layout`.
pub fn pack_b(b: &[f32], k: usize, n: usize, trans_b: bool, ldb: usize, layout: PackedLayout) -> Result<PackedB, KernelError> {
    let (rows, cols) = if trans_b { (n, k) } else { (k, n) };
    let ldb = if ldb == 0 { cols } else { ldb };
    check_matrix(KERNEL, "B", b.len(), rows, cols, ldb)?;
    match layout {
        PackedLayout::RowMajor => {
            let mut data = AlignedVec::zeros(checked_product(KERNEL, &[k, n])?);
            let out = data.as_mut_slice();
            if trans_b {
                // Transpose in 32x32 tiles so both sides stay in cache.
                const T: usize = 32;
                for j0 in (0..n).step_by(T) {
                    for p0 in (0..k).step_by(T) {
                        for j in j0..(j0 + T).min(n) {
                            for p in p0..(p0 + T).min(k) {
                                out[p * n + j] = b[j * ldb + p];
                            }
                        }
                    }
                }
            } else if n > 0 {
                for (dst, src) in out.chunks_exact_mut(n).zip(b.chunks(ldb)) {
                    dst.copy_from_slice(&src[..n]);
                }
            }
            Ok(PackedB { k, n, layout, data })
        }
        PackedLayout::Panel { nr } => {
            if !micro::valid_nr(nr) {
                return Err(invalid(KERNEL, format!("panel width {nr} (16, 32, 48 or 64)")));
            }
            let mut data = AlignedVec::zeros(checked_product(KERNEL, &[k, n.div_ceil(nr), nr])?);
            let (rs, cs) = if trans_b { (1, ldb) } else { (ldb, 1) };
            if k > 0 && n > 0 {
                arch::pack_b(Isa::best(), &Strided { data: b, rs, cs }, (0, k), (0, n), nr, data.as_mut_slice())
                    .ok_or_else(|| invalid(KERNEL, "B is shorter than its shape"))?;
            }
            Ok(PackedB { k, n, layout, data })
        }
    }
}

/// [`sgemm`] with a packed B: `spec.k`/`spec.n` must match it; `spec.trans_b` and `spec.ldb`
/// must be unset (the packing resolved them).
pub fn sgemm_packed(
    spec: &GemmSpec,
    a: &[f32],
    b: &PackedB,
    bias: Bias<'_>,
    c: &mut [f32],
    params: &GemmParams,
) -> Result<(), KernelError> {
    if spec.k != b.k || spec.n != b.n {
        return Err(invalid("gemm_packed", format!("spec is k={} n={}, packed B is k={} n={}", spec.k, spec.n, b.k, b.n)));
    }
    if spec.trans_b || spec.ldb != 0 {
        return Err(invalid("gemm_packed", "trans_b/ldb must be unset with a packed B"));
    }
    match b.layout {
        PackedLayout::RowMajor => sgemm(spec, a, b.data(), bias, c, params),
        PackedLayout::Panel { nr } => {
            // B was checked when packed; check A, C and the bias against the spec.
            spec.check(a.len(), spec.k.saturating_mul(spec.n), c.len(), bias)?;
            micro::gemm(spec, a, BSource::Panels { data: b.data(), nr }, bias, c, params)
        }
    }
}
