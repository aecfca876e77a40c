//! Shared by the wgpu tests: find the adapter, or say skipped with the reason; in CI
//! (`KILN_REQUIRE_GPU_ADAPTER=1`) a missing adapter fails instead.

use kiln_target::{Availability, Target};

pub fn adapter_or_skip() -> Option<String> {
    match kiln_target_wgpu::WgpuTarget.probe() {
        Availability::Available { device } => {
            println!("wgpu adapter: {device}");
            Some(device)
        }
        Availability::Unavailable { reason, remedy } => {
            if std::env::var("KILN_REQUIRE_GPU_ADAPTER").is_ok_and(|v| v == "1") {
                panic!("KILN_REQUIRE_GPU_ADAPTER=1 but no wgpu adapter: {reason}; {remedy}");
            }
            println!("skipped: no wgpu adapter ({reason}); {remedy}");
            None
        }
    }
}
