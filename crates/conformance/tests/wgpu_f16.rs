//! `--precision fp16` on the wgpu target, one op at a time: every case of `wgpu_cases`
//! compiled with f16 storage on an adapter with shader-f16 (lavapipe has it), each step of the
//! case's kernel marked f16 in the plan where the kernel has an f16 form, and the result within
//! `F16_TOL` (1e-2, see there) of the f32 reference executor. On an adapter without
//! shader-f16 the same compile must stay f32 and match within 1e-3. Without an adapter: skipped
//! (failing under KILN_REQUIRE_GPU_ADAPTER=1).

mod wgpu_cases;
mod wgpu_common;

use kiln_target::{CompileOptions, FloatPrecision};
use wgpu_cases::{cases, check_every_variant, off, run_case};

#[test]
fn f16_kernels_match_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    match kiln_target_wgpu::f16_support() {
        Ok(()) => println!("f16: the adapter has shader-f16"),
        Err(e) => println!("f16 refused (the plan must stay f32): {e}"),
    }
    let opts = CompileOptions { float: FloatPrecision::F16, ..off() };
    let mut failures = Vec::new();
    let all = cases();
    let mut worst = (0.0f64, "");
    for c in &all {
        match run_case(c, None, &opts) {
            Ok((_, err)) => {
                println!("{}: ok ({}, max error {err:.2e} relative)", c.name, c.kernel);
                if err > worst.0 {
                    worst = (err, c.name);
                }
            }
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    println!("worst case: {} at {:.2e}", worst.1, worst.0);
    assert!(failures.is_empty(), "{} of {} f16 cases failed:\n  {}", failures.len(), all.len(), failures.join("\n  "));
}

/// The tuner may pick any variant in f16 too (tiles through workgroup memory in f16, direct
/// loops, tree reductions): each must compute the same thing.
#[test]
fn every_f16_variant_matches_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    check_every_variant(&CompileOptions { float: FloatPrecision::F16, ..off() });
}
