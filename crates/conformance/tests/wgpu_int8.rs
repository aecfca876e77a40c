//! int8 on the wgpu target: `kiln::QMatMul` on `wgpu.qmatmul` (WGSL's packed 4x8 dot
//! product), one node at a time against the reference executor (static uint8 / int8 and
//! dynamic activations, int8 / uint8 weights per column or per tensor, K not a multiple of
//! 4, bias, activations), and MiniLM-L3 quantized to int8 (dynamic) against the CPU target's
//! int8 plan, both within 1e-3 relative: the integer sums are exact, so only the f32
//! epilogue's rounding differs. Without an adapter: skipped (failing under
//! KILN_REQUIRE_GPU_ADAPTER=1).

mod wgpu_common;

use kiln_conformance::models::{compare_to_reference, reference_run};
use kiln_target::{AttrValue, CompileOptions, PRECISION_ATTR, Target, TuneMode};
use kiln_tensor::Tensor;

#[test]
fn minilm_int8_runs_its_qmatmuls_on_the_adapter() {
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
    let int8: Vec<_> = plan.steps.iter().filter(|s| s.attrs.get(PRECISION_ATTR) == Some(&AttrValue::String("int8".into()))).collect();
    println!("{model_id} int8 on wgpu: {} int8 layers, kernels {:?}", int8.len(), plan.kernel_histogram());
    assert!(!int8.is_empty(), "no int8 layer in the quantized plan");
    for s in &int8 {
        assert_eq!(s.kernel, "wgpu.qmatmul", "{} stays on {}", s.node, s.kernel);
    }
    assert!(plan.precision_notes().is_empty(), "{:?}", plan.precision_notes());

    let (_, want) = compile(&kiln_target_cpu::CpuTarget);
    let want: Vec<(String, kiln_reference::Value)> = want.into_iter().map(|(n, t)| (n, kiln_reference::Value::Tensor(t))).collect();
    let failures = compare_to_reference(model_id, "wgpu int8", &got, &want, 1e-3);
    assert!(failures.is_empty(), "the wgpu plan's int8 run differs from the CPU target's:\n  {}", failures.join("\n  "));
}

fn seeded(n: usize, seed: u64) -> Vec<f32> {
    kiln_conformance::single_op::values(n, seed)
}

/// One `kiln::QMatMul` (`w` `[K, N]`) or `kiln::QConv` (`w` `[O, C, kh, kw]`) of a seeded `x`
/// (shape `a`) by int8 or uint8 `w` on the wgpu target and the reference: the plan's steps
/// and (got, want).
#[allow(clippy::too_many_arguments)]
fn qnode(
    op: &str,
    a: &[usize],
    x_quant: Option<(f32, Tensor)>,
    w: Tensor,
    w_scale: Tensor,
    w_zero: Option<Tensor>,
    bias: bool,
    act: &str,
) -> (Vec<kiln_target::Step>, Tensor, Tensor) {
    use kiln_ir::{Attr, Graph, Node};
    use kiln_tensor::{DType, Shape};
    let n = if op == "QConv" { w.shape()[0] } else { w.shape()[1] };
    let mut g = Graph::new("q");
    let x = g.add_value("x", Some(DType::F32), Some(Shape::known(a)));
    g.inputs.push(x);
    let constant = |g: &mut Graph, name: &str, t: Tensor| {
        let v = g.add_value(name, Some(t.dtype()), Some(Shape::known(t.shape())));
        g.initializers.insert(v, t);
        Some(v)
    };
    let (xs, xz) = match x_quant {
        Some((s, z)) => (constant(&mut g, "xs", Tensor::scalar(s)), constant(&mut g, "xz", z)),
        None => (None, None),
    };
    let wv = constant(&mut g, "w", w);
    let ws = constant(&mut g, "ws", w_scale);
    let wz = w_zero.and_then(|z| constant(&mut g, "wz", z));
    let b = if bias { constant(&mut g, "b", Tensor::from_vec(vec![n], seeded(n, 9)).expect("bias")) } else { None };
    let y = g.add_value("y", Some(DType::F32), None);
    g.nodes.push(Node {
        name: "q".into(),
        op_type: op.into(),
        domain: "kiln".into(),
        opset: 1,
        inputs: vec![Some(x), xs, xz, wv, ws, wz, b],
        outputs: vec![Some(y)],
        attrs: [("activation".to_string(), Attr::String(act.as_bytes().to_vec()))].into(),
        unsupported: None,
    });
    g.outputs.push(y);
    let model =
        kiln_ir::Model { graph: g, ir_version: 8, opsets: [(String::new(), 17), ("kiln".into(), 1)].into(), ..kiln_ir::Model::default() };
    let feed = Tensor::from_vec(a.to_vec(), seeded(a.iter().product(), 3)).expect("x");
    let want = kiln_reference::run(&model, vec![("x".into(), kiln_reference::Value::Tensor(feed.clone()))]).expect("reference");
    let target = kiln_target_wgpu::WgpuTarget;
    let compiled = kiln_pipeline::compile_model(model, &target, &CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() }, None)
        .expect("compile");
    let plan = compiled.plan.expect("plan");
    let steps = plan.steps.clone();
    let got = target.load(&plan, compiled.weights).expect("load").run(vec![("x".into(), feed)]).expect("run");
    let kiln_reference::Value::Tensor(want) = want.into_iter().next().expect("output").1 else { panic!("not a tensor") };
    (steps, got.into_iter().next().expect("output").1, want)
}

#[test]
fn qmatmul_single_nodes_match_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let (k, n) = (37, 11);
    let w_i8 = Tensor::from_vec(vec![k, n], (0..k * n).map(|i| ((i * 37) % 255) as i16 as i8).collect::<Vec<i8>>()).expect("w");
    let w_u8 = Tensor::from_vec(vec![k, n], (0..k * n).map(|i| ((i * 53) % 256) as u8).collect::<Vec<u8>>()).expect("w");
    let per_col = Tensor::from_vec(vec![n], (0..n).map(|j| 0.002 + 0.001 * j as f32).collect::<Vec<f32>>()).expect("ws");
    let zeros_i8 = Tensor::from_vec(vec![n], (0..n).map(|j| (j as i8) - 5).collect::<Vec<i8>>()).expect("wz");
    let cases = [
        (
            "static u8 x, int8 w per column, bias, relu",
            vec![5, k],
            Some((0.01, Tensor::scalar(7u8))),
            w_i8.clone(),
            per_col.clone(),
            Some(zeros_i8),
            true,
            "relu",
        ),
        (
            "static i8 x, uint8 w per tensor",
            vec![2, 3, k],
            Some((0.02, Tensor::scalar(-3i8))),
            w_u8,
            Tensor::scalar(0.004f32),
            Some(Tensor::scalar(120u8)),
            false,
            "none",
        ),
        ("dynamic x, int8 w symmetric, gelu", vec![4, k], None, w_i8, per_col, None, true, "gelu"),
    ];
    let mut failures = Vec::new();
    for (name, a, xq, w, ws, wz, bias, act) in cases {
        let (steps, got, want) = qnode("QMatMul", &a, xq, w, ws, wz, bias, act);
        let kernels: Vec<&str> = steps.iter().map(|s| s.kernel.as_str()).collect();
        if !kernels.contains(&"wgpu.qmatmul") {
            failures.push(format!("{name}: lowered to {kernels:?}"));
            continue;
        }
        match kiln_conformance::single_op::check_close(&got, &want, 1e-3, "wgpu.qmatmul") {
            Ok(()) => {
                let (diff, scale) = kiln_conformance::models::max_abs_diff(&got, &want).unwrap_or_default();
                println!("{name}: ok, max |wgpu - reference| {diff:.2e} (scale {scale:.2e})");
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An int8 layer the adapter has no kernel for (`kiln::QConv`) stays on the CPU part's int8
/// kernel, marked `precision: "int8"` with the note the compile report prints, and still
/// computes what the reference does.
#[test]
fn qconv_stays_on_the_cpu_part_marked() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let w = Tensor::from_vec(vec![4, 3, 3, 3], (0..108).map(|i| ((i * 29) % 255) as i16 as i8).collect::<Vec<i8>>()).expect("w");
    let (steps, got, want) =
        qnode("QConv", &[1, 3, 8, 8], Some((0.01, Tensor::scalar(3u8))), w, Tensor::scalar(0.003f32), None, true, "none");
    let q = steps.iter().find(|s| s.op == "QConv").expect("a QConv step");
    assert_eq!(q.kernel, "cpu.qconv");
    assert_eq!(q.attrs.get(PRECISION_ATTR), Some(&AttrValue::String("int8".into())));
    assert_eq!(q.attrs.get(kiln_target::PRECISION_NOTE_ATTR), Some(&AttrValue::String(kiln_target_wgpu::int8::NOTE.into())));
    kiln_conformance::single_op::check_close(&got, &want, 1e-3, "wgpu plan").unwrap_or_else(|e| panic!("{e}"));
}
