//! CPU fingerprint: what the kernels may use here, and a stable key for a tuning cache.

use std::sync::OnceLock;

/// What this CPU is and what it can run. Two machines with equal [`CpuFeatures::cache_key`]
/// should rank kernel candidates the same way, so tuned choices can be reused between them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CpuFeatures {
    /// `std::env::consts::ARCH`, e.g. `x86_64`, `aarch64`.
    pub arch: &'static str,
    /// cpuid vendor (`GenuineIntel`, `AuthenticAMD`), or the OS's name for it; empty if unknown.
    pub vendor: String,
    /// Brand/model string (`Intel(R) Xeon(R) Processor`); empty if unknown.
    pub brand: String,
    /// cpuid family, model and stepping (display values); zero where not x86.
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    pub avx512f: bool,
    pub avx2: bool,
    pub fma: bool,
    pub avx512vnni: bool,
    pub avx512bf16: bool,
    pub neon: bool,
    /// Hardware threads this process may use (`available_parallelism`).
    pub cores: usize,
}

impl CpuFeatures {
    /// A one-line key for a tuning cache, e.g.
    /// `x86_64/GenuineIntel/6-167-1/Intel(R) Xeon(R) Processor/avx512f+avx2+fma/2c`.
    pub fn cache_key(&self) -> String {
        let flags: Vec<&str> = [
            ("avx512f", self.avx512f),
            ("avx512vnni", self.avx512vnni),
            ("avx512bf16", self.avx512bf16),
            ("avx2", self.avx2),
            ("fma", self.fma),
            ("neon", self.neon),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
        format!(
            "{}/{}/{}-{}-{}/{}/{}/{}c",
            self.arch,
            self.vendor,
            self.family,
            self.model,
            self.stepping,
            self.brand,
            flags.join("+"),
            self.cores
        )
    }
}

/// The fingerprint of the CPU this process runs on (computed once).
pub fn cpu_features() -> &'static CpuFeatures {
    static CACHE: OnceLock<CpuFeatures> = OnceLock::new();
    CACHE.get_or_init(detect)
}

fn detect() -> CpuFeatures {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut f = CpuFeatures {
        arch: std::env::consts::ARCH,
        vendor: String::new(),
        brand: String::new(),
        family: 0,
        model: 0,
        stepping: 0,
        avx512f: false,
        avx2: false,
        fma: false,
        avx512vnni: false,
        avx512bf16: false,
        neon: false,
        cores,
    };
    detect_arch(&mut f);
    if f.brand.is_empty() {
        f.brand = proc_cpuinfo_model().unwrap_or_default();
    }
    f
}

#[cfg(target_arch = "x86_64")]
fn detect_arch(f: &mut CpuFeatures) {
    use std::arch::x86_64::__cpuid;
    f.avx512f = is_x86_feature_detected!("avx512f");
    f.avx2 = is_x86_feature_detected!("avx2");
    f.fma = is_x86_feature_detected!("fma");
    f.avx512vnni = is_x86_feature_detected!("avx512vnni");
    f.avx512bf16 = is_x86_feature_detected!("avx512bf16");

    let leaf0 = __cpuid(0);
    let mut vendor = Vec::with_capacity(12);
    for reg in [leaf0.ebx, leaf0.edx, leaf0.ecx] {
        vendor.extend_from_slice(&reg.to_le_bytes());
    }
    f.vendor = clean(&vendor);
    if leaf0.eax >= 1 {
        let eax = __cpuid(1).eax;
        let base_family = (eax >> 8) & 0xf;
        let base_model = (eax >> 4) & 0xf;
        f.stepping = eax & 0xf;
        f.family = if base_family == 0xf { base_family + ((eax >> 20) & 0xff) } else { base_family };
        f.model = if base_family == 0x6 || base_family == 0xf { (((eax >> 16) & 0xf) << 4) | base_model } else { base_model };
    }
    if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
        let mut brand = Vec::with_capacity(48);
        for leaf in 0x8000_0002u32..=0x8000_0004 {
            let r = __cpuid(leaf);
            for reg in [r.eax, r.ebx, r.ecx, r.edx] {
                brand.extend_from_slice(&reg.to_le_bytes());
            }
        }
        f.brand = clean(&brand);
    }
}

#[cfg(target_arch = "aarch64")]
fn detect_arch(f: &mut CpuFeatures) {
    f.neon = std::arch::is_aarch64_feature_detected!("neon");
    f.vendor = proc_cpuinfo_field("CPU implementer").unwrap_or_default();
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_arch(_f: &mut CpuFeatures) {}

fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_matches(char::from(0)).trim().to_string()
}

fn proc_cpuinfo_field(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_string())
    })
}

fn proc_cpuinfo_model() -> Option<String> {
    proc_cpuinfo_field("model name").or_else(|| proc_cpuinfo_field("Model"))
}
