//! int8 on the wgpu target: not supported yet (`kiln_target_wgpu::int8`). MiniLM-L3 quantized
//! to int8 (dynamic, no calibration) and compiled for wgpu: every int8 layer stays on the CPU
//! part's int8 kernel, marked `precision: "int8"` with the note the compile report prints,
//! and the plan computes what the CPU target's int8 plan computes (same int8 kernels; the f32
//! steps between them on the adapter) within 1e-3 relative. Without an adapter: skipped
//! (failing under KILN_REQUIRE_GPU_ADAPTER=1).

mod wgpu_common;

use kiln_conformance::models::{compare_to_reference, reference_run};
use kiln_target::{AttrValue, CompileOptions, PRECISION_ATTR, PRECISION_NOTE_ATTR, Target, TuneMode};

#[test]
fn int8_layers_stay_on_the_cpu_part_marked_and_correct() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let model_id = "paraphrase-minilm-l3";
    let (path, inputs, _) = reference_run(model_id).unwrap_or_else(|e| panic!("{e}"));
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let quant = kiln_pipeline::QuantRequest { force: true, ..kiln_pipeline::QuantRequest::default() };
    let compile = |target: &dyn Target| {
        let (model, _) = kiln_pipeline::load_model(&path, &target.coverage(), None).unwrap_or_else(|e| panic!("{e}"));
        let c = kiln_pipeline::compile_model_with(model, target, &opts, None, Some(&quant)).unwrap_or_else(|e| panic!("compile: {e}"));
        let plan = c.plan.unwrap_or_else(|| panic!("no plan"));
        let mut exe = target.load(&plan, c.weights).unwrap_or_else(|e| panic!("load: {e}"));
        let got = exe.run(inputs.clone()).unwrap_or_else(|e| panic!("run: {e}"));
        (plan, got)
    };
    let (plan, got) = compile(&kiln_target_wgpu::WgpuTarget);
    let int8: Vec<_> = plan.steps.iter().filter(|s| kiln_target_wgpu::int8::is_int8_layer(s)).collect();
    println!("{model_id} int8 on wgpu: {} int8 layers, kernels {:?}", int8.len(), plan.kernel_histogram());
    assert!(!int8.is_empty(), "no int8 layer in the quantized plan");
    for s in &int8 {
        assert!(!s.kernel.starts_with("wgpu."), "{} on {}", s.node, s.kernel);
        assert_eq!(s.attrs.get(PRECISION_ATTR), Some(&AttrValue::String("int8".into())), "{}", s.node);
        assert_eq!(s.attrs.get(PRECISION_NOTE_ATTR), Some(&AttrValue::String(kiln_target_wgpu::int8::NOTE.into())), "{}", s.node);
    }
    assert_eq!(plan.precision_notes().get(kiln_target_wgpu::int8::NOTE).map(Vec::len), Some(int8.len()));

    let (_, want) = compile(&kiln_target_cpu::CpuTarget);
    let want: Vec<(String, kiln_reference::Value)> = want.into_iter().map(|(n, t)| (n, kiln_reference::Value::Tensor(t))).collect();
    let failures = compare_to_reference(model_id, "wgpu int8", &got, &want, 1e-3);
    assert!(failures.is_empty(), "the wgpu plan's int8 run differs from the CPU target's:\n  {}", failures.join("\n  "));
}
