//! The ONNX backend test data through the full wgpu path: import, optimize, lower to a wgpu
//! plan (untuned; WGSL kernels where they cover a step, the CPU target for the rest), load and
//! run on the adapter. `expected/wgpu.txt` lists the cases that must keep passing;
//! `expected/wgpu-skip.txt` the cases not run on this target, each with its reason. Without an
//! adapter each suite says skipped (and fails under KILN_REQUIRE_GPU_ADAPTER=1).

mod wgpu_common;

use kiln_reference::Value;
use kiln_target::{CompileOptions, Target, TuneMode};

fn run_on_wgpu(model: &kiln_ir::Model, inputs: Vec<(String, Value)>) -> Result<Vec<(String, Value)>, String> {
    let target = kiln_target_wgpu::WgpuTarget;
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let compiled = kiln_pipeline::compile_model(model.clone(), &target, &opts, None).map_err(|e| e.to_string())?;
    let plan = compiled.plan.ok_or("no plan")?;
    let mut exe = target.load(&plan, compiled.weights).map_err(|e| e.to_string())?;
    let mut tensors = Vec::with_capacity(inputs.len());
    for (name, v) in inputs {
        match v {
            Value::Tensor(t) => tensors.push((name, t)),
            other => return Err(format!("input '{name}' is a {}; wgpu plans take tensors only", other.kind())),
        }
    }
    let outs = exe.run(tensors).map_err(|e| e.to_string())?;
    Ok(outs.into_iter().map(|(n, t)| (n, Value::Tensor(t))).collect())
}

fn run_suite(suite: &str) {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    kiln_conformance::suite::run_suite("wgpu", suite, &kiln_target_wgpu::WgpuTarget.coverage(), &run_on_wgpu);
}

#[test]
fn node() {
    run_suite("node");
}

#[test]
fn simple() {
    run_suite("simple");
}

#[test]
fn pytorch_converted() {
    run_suite("pytorch-converted");
}

#[test]
fn pytorch_operator() {
    run_suite("pytorch-operator");
}

#[test]
fn light() {
    run_suite("light");
}
