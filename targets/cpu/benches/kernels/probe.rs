//! Ad-hoc probe used while tuning: FMA peak trials.

use std::time::Duration;

use kiln_target_cpu::kernels::{Isa, fma_peak_gflops};

pub fn run() {
    for ms in [50, 200, 1000] {
        for isa in Isa::available() {
            let v: Vec<String> = (0..5).map(|_| format!("{:.1}", fma_peak_gflops(isa, 1, Duration::from_millis(ms)))).collect();
            println!("{ms} ms {isa}: {}", v.join(" "));
        }
    }
}
