//! Instruction-set levels a kernel can be compiled for, chosen at run time.

use std::fmt;

/// An instruction-set level. Every kernel has a body compiled for each level that exists on
/// the build target; asking for a level the CPU lacks falls back to the best one it has, so
/// any `Isa` is safe to pass anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// The build target's baseline (SSE2 on x86-64, NEON on aarch64): always available.
    Scalar,
    /// aarch64 NEON (the aarch64 baseline: same code as `Scalar` there).
    Neon,
    /// x86 AVX2 + FMA (256-bit vectors).
    Avx2Fma,
    /// x86 AVX-512 F/VL/BW/DQ + AVX2 + FMA (512-bit vectors).
    Avx512,
}

impl Isa {
    /// Whether this CPU can run code compiled for `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Neon => cfg!(target_arch = "aarch64"),
            Isa::Avx2Fma => has_avx2_fma(),
            Isa::Avx512 => has_avx512(),
        }
    }

    /// Levels available here, best first (the first is the default candidate).
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2Fma, Isa::Neon, Isa::Scalar].into_iter().filter(|isa| isa.is_available()).collect()
    }

    /// The best level available here.
    pub fn best() -> Isa {
        Isa::available().first().copied().unwrap_or(Isa::Scalar)
    }

    /// `self` if available, else the best available level below it.
    pub fn effective(self) -> Isa {
        match self {
            Isa::Avx512 if has_avx512() => Isa::Avx512,
            Isa::Avx512 | Isa::Avx2Fma if has_avx2_fma() => Isa::Avx2Fma,
            Isa::Neon if cfg!(target_arch = "aarch64") => Isa::Neon,
            _ => Isa::Scalar,
        }
    }

    /// f32 lanes of one vector register at this level.
    pub fn f32_lanes(self) -> usize {
        match self.effective() {
            Isa::Avx512 => 16,
            Isa::Avx2Fma => 8,
            Isa::Neon => 4,
            Isa::Scalar => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Avx512 => "avx512",
        }
    }
}

impl Default for Isa {
    fn default() -> Self {
        Isa::best()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub(crate) fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && has_avx2_fma()
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub(crate) fn has_avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
pub(crate) fn has_avx512() -> bool {
    false
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
pub(crate) fn has_avx2_fma() -> bool {
    false
}
