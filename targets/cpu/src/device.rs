//! What CPU this is: the device string plans carry and the fingerprint tuning records key on,
//! both from the kernels' one CPU detection (`kernels::cpu_features`).

use crate::kernels::cpu_features;

/// Instruction-set features Kiln's kernels dispatch on, in a stable order.
pub fn features() -> Vec<&'static str> {
    let f = cpu_features();
    [("avx512f", f.avx512f), ("avx512vnni", f.avx512vnni), ("avx512bf16", f.avx512bf16), ("avx2", f.avx2), ("fma", f.fma), ("neon", f.neon)]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
}

/// The CPU's brand string, or the architecture when unknown.
pub fn model_name() -> String {
    let f = cpu_features();
    if f.brand.is_empty() { f.arch.to_string() } else { f.brand.clone() }
}

pub fn cores() -> usize {
    cpu_features().cores
}

/// "Intel Xeon ... (x86_64: avx512f avx2 fma; 2 cores)".
pub fn description() -> String {
    format!("{} ({}: {}; {} cores)", model_name(), std::env::consts::ARCH, features().join(" "), cores())
}

/// The threading runtime kernels run on, part of the fingerprint: timings taken under another
/// (rayon's sleeping pool before `par`) chose differently, so its records must not be reused.
const THREADING: &str = "par1";

/// Tuning records are valid for one CPU model with one feature set and core count, under one
/// threading runtime.
pub fn fingerprint() -> String {
    format!("{}/{THREADING}", cpu_features().cache_key())
}
