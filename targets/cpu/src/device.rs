//! What CPU this is: the device string plans carry and the fingerprint tuning records key on.

/// Instruction-set features Kiln's kernels dispatch on, in a stable order.
pub fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            f.push("avx512f");
        }
        if std::arch::is_x86_feature_detected!("avx512vnni") {
            f.push("avx512vnni");
        }
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            f.push("avx512bf16");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            f.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            f.push("fma");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            f.push("neon");
        }
    }
    f
}

/// The CPU's model name (from /proc/cpuinfo on Linux), or the architecture.
pub fn model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// "Intel Xeon ... (x86_64: avx512f avx2 fma; 2 cores)".
pub fn description() -> String {
    format!("{} ({}: {}; {} cores)", model_name(), std::env::consts::ARCH, features().join(" "), cores())
}

/// Tuning records are valid for one CPU model with one feature set and core count.
pub fn fingerprint() -> String {
    format!("{}|{}|{}|{}", std::env::consts::ARCH, model_name(), features().join(","), cores())
}
