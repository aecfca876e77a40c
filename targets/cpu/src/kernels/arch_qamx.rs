//! `unsafe` of the AMX int8 tile ([`QIsa::Amx`](super::QIsa::Amx), the default candidate from
//! 32 rows where available): the `arch_prctl` request for the tile state and the AMX instructions, both
//! through inline assembly (the AMX intrinsics are not stable Rust).
//!
//! Why `unsafe` is unavoidable here:
//! - Linux gives a process the AMX tile state only after `arch_prctl(ARCH_REQ_XCOMP_PERM,
//!   XFEATURE_XTILEDATA)`, a raw system call (no libc dependency here).
//! - `ldtilecfg` / `tileloadd` / `tdpbusd` / `tilestored` read and write memory through
//!   pointers. [`tile`] checks every extent once before the loop; the SAFETY comments say which
//!   check covers which access. [`available`] is true only when the CPU reports AMX-TILE and
//!   AMX-INT8 and the kernel granted the permission, and the tile is only run then.
#![allow(unsafe_code)]

use super::arch_q::TileIn;
use super::qgemm::PANEL;

/// Rows of A (and of C) one AMX tile pass computes: two 16-row tiles.
pub(crate) const MR: usize = 32;
/// k groups (of 4 bytes) per tile step: one 64-byte tile row.
const KSTEP: usize = 16;

/// Whether the AMX tile can run here (checked once per process).
pub(crate) fn available() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *OK.get_or_init(x86::request)
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        false
    }
}

/// Whether the AMX-BF16 tiles can run here: CPUID reports AMX-TILE and AMX-BF16 (and
/// AVX512-BF16 for the conversions around them) and Linux granted the tile data state.
pub(crate) fn available_bf16() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *OK.get_or_init(x86::request_bf16)
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        false
    }
}

/// Loads the tile configuration (palette 1, eight 16 x 64-byte tiles) on this thread unless
/// it is loaded; false when no AMX unit is available. Every AMX kernel here uses this one
/// configuration and [`release`], so their threads' state stays consistent.
pub(crate) fn configure() -> bool {
    if !(available() || available_bf16()) {
        return false;
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        // SAFETY: an AMX unit is available with the tile-data permission (checked above).
        unsafe { x86::configure() };
    }
    true
}

/// The dot product of an AMX pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dot {
    /// u8 x i8 groups of four into i32 (`tdpbusd`).
    U8I8,
    /// bf16 pairs into f32 (`tdpbf16ps`).
    Bf16,
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use x86::pass;

/// Releases this thread's tile state if a [`tile`] configured it (the driver calls this at
/// the end of each part; the next tile configures again).
pub(crate) fn release() {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    x86::release();
}

/// `out[r * 16 nv + c] = sum_k A[r][k] B[k][c]` for a `32 x 16 nv` tile (`nv` 1 or 2); false
/// when AMX is not available or the operands do not fit. A's rows must be zero past k up to
/// the next multiple of 64 bytes (`QuantizedA` pads them) and B readable for whole 16-group
/// steps (`QPackedB` keeps 1 KiB of slack at its end): the bytes past k meet zeros.
pub(crate) fn tile(nv: usize, t: &TileIn<'_>, out: &mut [i32]) -> bool {
    let steps = t.kg.div_ceil(KSTEP);
    let row_bytes = steps * KSTEP * 4;
    let pstride = t.kg * PANEL * 4;
    let a_need = (MR - 1).checked_mul(t.lda).and_then(|x| x.checked_add(row_bytes)).and_then(|x| x.checked_add(t.a_off));
    let b_need = (nv.max(1) - 1).checked_mul(pstride).and_then(|x| x.checked_add(steps * KSTEP * 64)).and_then(|x| x.checked_add(t.b_off));
    let fits = (1..=2).contains(&nv)
        && t.lda >= row_bytes
        && a_need.is_some_and(|n| n <= t.a.len())
        && b_need.is_some_and(|n| n <= t.b.len())
        && out.len() >= MR * nv * PANEL;
    if !fits || !available() {
        return false;
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        // SAFETY: `fits` above covers every tile load and store (see `x86::run`), and
        // `available` confirmed AMX and the tile-data permission.
        unsafe {
            x86::configure();
            x86::run(nv, t, steps, pstride, out);
        }
        true
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        false
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86 {
    use super::{Dot, KSTEP, PANEL, TileIn};
    use std::arch::asm;

    /// CPUID reports AMX-TILE and AMX-INT8 and Linux grants the tile data state.
    pub(super) fn request() -> bool {
        if !(super::super::isa::has_avx512() && is_x86_feature_detected!("avx512vnni")) {
            return false;
        }
        // CPUID leaf 7, sub-leaf 0: EDX bit 24 AMX-TILE, bit 25 AMX-INT8.
        let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
        edx & (3 << 24) == 3 << 24 && permission()
    }

    /// CPUID reports AMX-TILE and AMX-BF16, the CPU AVX512-BF16, and Linux grants the tile
    /// data state.
    pub(super) fn request_bf16() -> bool {
        if !(super::super::isa::has_avx512() && is_x86_feature_detected!("avx512bf16")) {
            return false;
        }
        // CPUID leaf 7, sub-leaf 0: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
        let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
        let want = (1 << 22) | (1 << 24);
        edx & want == want && permission()
    }

    /// Asks Linux for the AMX tile data state (once per process).
    fn permission() -> bool {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *OK.get_or_init(|| {
        const SYS_ARCH_PRCTL: usize = 158;
        const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
        const XFEATURE_XTILEDATA: usize = 18;
        let ret: isize;
        // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) only changes this process's
        // permission to use the AMX state; the syscall clobbers rcx and r11, declared here.
        unsafe {
            asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL as isize => ret, in("rdi") ARCH_REQ_XCOMP_PERM, in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        ret == 0
        })
    }

    thread_local! {
        /// Whether this thread's tile configuration is loaded.
        static CONFIGURED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Loads the tile configuration once per thread (until [`release`]).
    ///
    /// # Safety
    /// AMX is available with permission (`super::available`).
    pub(super) unsafe fn configure() {
        if !CONFIGURED.get() {
            let cfg = config();
            // SAFETY: `cfg` is a valid 64-byte tile configuration (palette 1, 8 tiles of
            // 16 x 64 bytes); AMX is available (the caller's contract).
            unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
            CONFIGURED.set(true);
        }
    }

    pub(super) fn release() {
        if CONFIGURED.get() {
            // SAFETY: the tile state was configured on this thread (so AMX is available);
            // tilerelease returns it to the init state.
            unsafe { asm!("tilerelease", options(nostack, nomem)) };
            CONFIGURED.set(false);
        }
    }

    /// The tile configuration: palette 1, tiles 0..=7 all 16 rows x 64 bytes.
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    fn config() -> Config {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64; // colsb (u16, little endian)
            c[48 + t] = 16; // rows
        }
        Config(c)
    }

    /// # Safety
    /// AMX is available with permission and configured on this thread ([`configure`]), and
    /// `super::tile`'s `fits`
    /// holds for `nv`, `steps`, `pstride`: A rows `a_off + r lda .. + 64 steps` for r < 32, B
    /// `b_off + v pstride .. + 1024 steps` for v < nv, and `out` holds `32 * 16 nv` i32.
    pub(super) unsafe fn run(nv: usize, t: &TileIn<'_>, steps: usize, pstride: usize, out: &mut [i32]) {
        let a = t.a.as_ptr().wrapping_add(t.a_off);
        let b = t.b.as_ptr().wrapping_add(t.b_off);
        // SAFETY: the caller's contract is `pass`'s, with C rows of 16 nv i32.
        unsafe { pass(Dot::U8I8, nv, (a, t.lda), (b.cast(), pstride), steps, (out.as_mut_ptr().cast(), nv * PANEL * 4)) }
    }

    /// One 32 x 16 nv pass (`nv` 1 or 2) of `dot` over `steps` steps: A 32 rows (`lda` bytes
    /// apart), B `nv` panels of 16-row x 64-byte tiles (`pstride` bytes apart), C 32 rows of
    /// 16 nv 4-byte sums (`ldc` bytes apart).
    ///
    /// # Safety
    /// AMX (with `dot`'s unit) is available with permission and configured on this thread
    /// ([`configure`]); A is readable for 32 rows of `64 steps` bytes, B for `nv` panels of
    /// `1024 steps` bytes, C writable for 32 rows of `64 nv` bytes.
    pub(crate) unsafe fn pass(
        dot: Dot,
        nv: usize,
        (a, lda): (*const u8, usize),
        (b, pstride): (*const u8, usize),
        steps: usize,
        (c, ldc): (*mut u8, usize),
    ) {
        let ldb = 64usize;
        let a1 = a.wrapping_add(16 * lda);
        let b1 = b.wrapping_add(pstride);
        // The two products of one B panel (C rows 0..16 and 16..32), `$op` the dot product.
        macro_rules! panel {
            ($op:literal, $b:ident, $bt:literal, $c0:literal, $c1:literal, $ao:expr, $bo:expr) => {
                asm!(
                    concat!("tileloadd ", $bt, ", [{bp} + {ldb}*1]"),
                    concat!($op, " ", $c0, ", tmm4, ", $bt),
                    concat!($op, " ", $c1, ", tmm5, ", $bt),
                    bp = in(reg) $b.add($bo), ldb = in(reg) ldb,
                    options(nostack, readonly),
                )
            };
        }
        // SAFETY: the tiles are configured (16 x 64 bytes each); tmm0..=3 are C (rows 0..16 and
        // 16..32 against panels 0 and 1), tmm4/5 the two A halves, tmm6/7 the two B panels.
        // Every load stays inside the extents the caller checked: step s reads A bytes
        // 64 s .. 64 s + 64 of rows 0..32 and B bytes 1024 s .. 1024 s + 1024 of each panel;
        // the stores write rows 0..32 of 64 nv bytes.
        unsafe {
            asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
            for s in 0..steps {
                let (ao, bo) = (s * KSTEP * 4, s * KSTEP * 64);
                asm!(
                    "tileloadd tmm4, [{a0} + {lda}*1]",
                    "tileloadd tmm5, [{a1} + {lda}*1]",
                    a0 = in(reg) a.add(ao), a1 = in(reg) a1.add(ao), lda = in(reg) lda,
                    options(nostack, readonly),
                );
                match (dot, nv == 2) {
                    (Dot::U8I8, false) => panel!("tdpbusd", b, "tmm6", "tmm0", "tmm2", ao, bo),
                    (Dot::U8I8, true) => {
                        panel!("tdpbusd", b, "tmm6", "tmm0", "tmm2", ao, bo);
                        panel!("tdpbusd", b1, "tmm7", "tmm1", "tmm3", ao, bo);
                    }
                    (Dot::Bf16, false) => panel!("tdpbf16ps", b, "tmm6", "tmm0", "tmm2", ao, bo),
                    (Dot::Bf16, true) => {
                        panel!("tdpbf16ps", b, "tmm6", "tmm0", "tmm2", ao, bo);
                        panel!("tdpbf16ps", b1, "tmm7", "tmm1", "tmm3", ao, bo);
                    }
                }
            }
            // Tile (half h, panel v) starts at row 16 h, column 16 v.
            asm!(
                "tilestored [{c0} + {ldc}*1], tmm0",
                "tilestored [{c2} + {ldc}*1], tmm2",
                c0 = in(reg) c, c2 = in(reg) c.add(16 * ldc), ldc = in(reg) ldc,
                options(nostack),
            );
            if nv == 2 {
                asm!(
                    "tilestored [{c1} + {ldc}*1], tmm1",
                    "tilestored [{c3} + {ldc}*1], tmm3",
                    c1 = in(reg) c.add(64), c3 = in(reg) c.add(16 * ldc + 64), ldc = in(reg) ldc,
                    options(nostack),
                );
            }
        }
    }
}
