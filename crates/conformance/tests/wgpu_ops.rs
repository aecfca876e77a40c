//! WGSL kernels one op at a time: each case is one node with its weights as initializers,
//! compiled for the wgpu target (tune off), checked to put the step on the expected wgpu
//! kernel (a silent fallback to the CPU fails the case) and to match the reference executor
//! within 1e-3 relative. Without an adapter the test says skipped, and fails when
//! KILN_REQUIRE_GPU_ADAPTER=1 (CI installs lavapipe).

mod wgpu_common;

use kiln_conformance::single_op::{Case, In, case, chain_attrs, check_close, check_kernel, ints, model, string};
use kiln_ir::Attr;
use kiln_target::{CompileOptions, Target, TuneMode};

fn run_case(c: &Case, variant: Option<&str>, opts: &CompileOptions) -> Result<Vec<kiln_target::TuneDecision>, String> {
    let (model, feeds, want) = model(c)?;
    let target = kiln_target_wgpu::WgpuTarget;
    let compiled = kiln_pipeline::compile_model(model, &target, opts, None).map_err(|e| format!("compile: {e}"))?;
    let mut plan = compiled.plan.ok_or("no plan")?;
    if let Some(v) = variant {
        for s in plan.steps.iter_mut().filter(|s| s.kernel == c.kernel) {
            s.variant = v.to_string();
        }
    }
    check_kernel(c, &plan.steps.iter().map(|s| s.kernel.as_str()).collect::<Vec<_>>())?;
    // Every wgpu step that dispatches says how it launches (the shapes are all known here).
    for s in plan.steps.iter().filter(|s| s.kernel.starts_with("wgpu.") && kiln_target_wgpu::kernel_dispatches(&s.kernel)) {
        match &s.launch {
            Some(l) if l.grid.iter().chain(&l.block).all(|&d| d >= 1) => {}
            other => return Err(format!("{} step '{}' has launch {other:?}", s.kernel, s.node)),
        }
    }
    let mut exe = target.load(&plan, compiled.weights).map_err(|e| format!("load: {e}"))?;
    let got = exe.run(feeds).map_err(|e| format!("run: {e}"))?;
    let (_, got) = got.first().ok_or("no output")?;
    check_close(got, &want, 1e-3, "wgpu")?;
    Ok(compiled.tune)
}

fn off() -> CompileOptions {
    CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() }
}

fn cases() -> Vec<Case> {
    use In::*;
    vec![
        case("add_row", "Add", vec![X(&[2, 3, 8]), W(&[8])], vec![], "wgpu.elementwise"),
        case("mul_channel", "Mul", vec![X(&[2, 4, 5, 5]), W(&[1, 4, 1, 1])], vec![], "wgpu.elementwise"),
        case("sub_scalar_left", "Sub", vec![W(&[]), X(&[3, 7])], vec![], "wgpu.elementwise"),
        case("div_general", "Div", vec![X(&[3, 1, 6]), X(&[1, 4, 1])], vec![], "wgpu.elementwise"),
        case("hard_sigmoid", "HardSigmoid", vec![X(&[4, 33])], vec![("alpha", Attr::Float(0.3))], "wgpu.elementwise"),
        case("clip_inputs", "Clip", vec![X(&[5, 9]), Vals(&[], &[-0.25]), Vals(&[], &[0.5])], vec![], "wgpu.elementwise"),
        case("sigmoid", "Sigmoid", vec![X(&[3, 40])], vec![], "wgpu.elementwise"),
        case("linear_batched", "MatMul", vec![X(&[2, 5, 33]), W(&[33, 20])], vec![], "wgpu.matmul"),
        case("linear_tiles", "MatMul", vec![X(&[1, 70, 130]), W(&[130, 97])], vec![], "wgpu.matmul"),
        case(
            "gemm_transb_bias",
            "Gemm",
            vec![X(&[7, 16]), W(&[24, 16]), W(&[24])],
            vec![("transB", Attr::Int(1)), ("alpha", Attr::Float(0.5))],
            "wgpu.matmul",
        ),
        case("gemm_no_bias", "Gemm", vec![X(&[3, 9]), W(&[9, 4]), Absent], vec![], "wgpu.matmul"),
        Case {
            name: "fused_matmul_gelu",
            domain: "kiln",
            op: "FusedMatMul",
            inputs: vec![X(&[3, 40]), W(&[40, 70]), W(&[70])],
            attrs: vec![("activation", string("gelu"))],
            kernel: "wgpu.matmul",
        },
        case("transpose_heads", "Transpose", vec![X(&[2, 7, 3, 4])], vec![("perm", ints(&[0, 2, 1, 3]))], "wgpu.transpose"),
        case("transpose_reverse", "Transpose", vec![X(&[2, 3, 5])], vec![], "wgpu.transpose"),
        case("concat_axis1", "Concat", vec![X(&[2, 3, 4]), X(&[2, 1, 4]), W(&[2, 2, 4])], vec![("axis", Attr::Int(1))], "wgpu.concat"),
        case("concat_last_negative", "Concat", vec![X(&[3, 2]), X(&[3, 5])], vec![("axis", Attr::Int(-1))], "wgpu.concat"),
        case("softmax_last", "Softmax", vec![X(&[2, 3, 17])], vec![], "wgpu.rows"),
        case("softmax_long_row", "Softmax", vec![X(&[3, 700])], vec![], "wgpu.rows"),
        case(
            "layernorm",
            "LayerNormalization",
            vec![X(&[2, 5, 16]), W(&[16]), W(&[16])],
            vec![("epsilon", Attr::Float(1e-3))],
            "wgpu.rows",
        ),
        case("layernorm_2axes", "LayerNormalization", vec![X(&[3, 4, 6]), W(&[4, 6])], vec![("axis", Attr::Int(1))], "wgpu.rows"),
        case("conv_bias", "Conv", vec![X(&[2, 3, 9, 8]), W(&[5, 3, 3, 3]), W(&[5])], vec![("pads", ints(&[1, 1, 1, 1]))], "wgpu.conv2d"),
        case("conv_tiles", "Conv", vec![X(&[2, 6, 9, 9]), W(&[20, 6, 3, 3]), W(&[20])], vec![("strides", ints(&[1, 1]))], "wgpu.conv2d"),
        case(
            "conv_depthwise_s2",
            "Conv",
            vec![X(&[1, 6, 11, 10]), W(&[6, 1, 3, 3])],
            vec![("group", Attr::Int(6)), ("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 1]))],
            "wgpu.conv2d",
        ),
        Case {
            name: "fused_conv_grouped_hard_swish",
            domain: "kiln",
            op: "FusedConv",
            inputs: vec![X(&[1, 6, 9, 11]), W(&[8, 3, 3, 3]), W(&[8])],
            attrs: vec![
                ("group", Attr::Int(2)),
                ("pads", ints(&[1, 0, 1, 2])),
                ("strides", ints(&[2, 1])),
                ("dilations", ints(&[1, 2])),
                ("activation", string("hard_swish")),
            ],
            kernel: "wgpu.conv2d",
        },
        Case {
            name: "fused_conv_nhwc",
            domain: "kiln",
            op: "FusedConv",
            inputs: vec![X(&[1, 9, 11, 6]), W(&[8, 3, 3, 3]), W(&[8])],
            attrs: vec![
                ("layout", string("NHWC")),
                ("group", Attr::Int(2)),
                ("pads", ints(&[1, 0, 1, 2])),
                ("strides", ints(&[2, 1])),
                ("activation", string("relu")),
            ],
            kernel: "wgpu.conv2d",
        },
        case("tanh", "Tanh", vec![X(&[3, 40])], vec![], "wgpu.elementwise"),
        Case {
            name: "chain_mixed_operands",
            domain: "kiln",
            op: "Chain",
            inputs: vec![X(&[1, 4, 5, 5]), Vals(&[], &[0.75]), W(&[1, 4, 1, 1]), W(&[5]), X(&[1, 4, 5, 5])],
            attrs: chain_attrs(
                &[("HardSwish", -1, 0), ("Mul", 1, 0), ("Add", 2, 0), ("Div", 3, 0), ("Sub", 4, 1), ("Clip", -1, 0), ("GeluTanh", -1, 0)],
                -0.5,
                0.5,
            ),
            kernel: "wgpu.elementwise",
        },
        Case {
            name: "attention_mask",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[2, 3, 9, 8]), X(&[2, 3, 11, 8]), X(&[2, 3, 11, 5]), X(&[2, 1, 1, 11])],
            attrs: vec![("scale", Attr::Float(0.35))],
            kernel: "wgpu.attention",
        },
        Case {
            name: "attention_k_transposed_one_kv_head",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[1, 4, 6, 8]), X(&[1, 1, 8, 7]), X(&[1, 1, 7, 8])],
            attrs: vec![("k_transposed", Attr::Int(1))],
            kernel: "wgpu.attention",
        },
        Case {
            name: "attention_long_keys",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[1, 2, 3, 16]), X(&[1, 2, 1500, 16]), X(&[1, 2, 1500, 40])],
            attrs: vec![("scale", Attr::Float(0.25))],
            kernel: "wgpu.attention",
        },
        Case {
            name: "chain_rows",
            domain: "kiln",
            op: "Chain",
            inputs: vec![X(&[3, 16]), W(&[16]), Vals(&[], &[2.0])],
            attrs: chain_attrs(&[("Add", 1, 0), ("Sigmoid", -1, 0), ("Max", 2, 1), ("Sqrt", -1, 0)], 0.0, 0.0),
            kernel: "wgpu.elementwise",
        },
        Case {
            name: "attention_heads_in_columns_mask",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[2, 5, 12]), X(&[2, 7, 12]), X(&[2, 7, 8]), X(&[2, 1, 1, 7])],
            attrs: vec![("num_heads", Attr::Int(4)), ("scale", Attr::Float(0.5))],
            kernel: "wgpu.attention",
        },
        Case {
            name: "attention_packed_qkv",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[1, 6, 24])],
            attrs: vec![("num_heads", Attr::Int(2)), ("scale", Attr::Float(0.3))],
            kernel: "wgpu.attention",
        },
        case("reduce_mean_last", "ReduceMean", vec![X(&[2, 3, 300])], vec![("axes", ints(&[-1]))], "wgpu.reduce"),
        case("reduce_sum_axes_input", "ReduceSum", vec![X(&[2, 5, 3, 4]), Ints(&[1, 2])], vec![("keepdims", Attr::Int(0))], "wgpu.reduce"),
        case("reduce_max_first", "ReduceMax", vec![X(&[6, 7])], vec![("axes", ints(&[0])), ("keepdims", Attr::Int(0))], "wgpu.reduce"),
        case("reduce_min_all", "ReduceMin", vec![X(&[3, 4, 5])], vec![], "wgpu.reduce"),
        case("global_average_pool", "GlobalAveragePool", vec![X(&[2, 3, 7, 9])], vec![], "wgpu.reduce"),
        case("global_max_pool", "GlobalMaxPool", vec![X(&[1, 4, 5, 5])], vec![], "wgpu.reduce"),
        case("gather_embedding", "Gather", vec![W(&[50, 16]), XInts(&[2, 3], &[0, 49, -1, 7, 7, -50])], vec![], "wgpu.gather"),
        case(
            "batchnorm",
            "BatchNormalization",
            vec![X(&[2, 3, 5, 4]), W(&[3]), W(&[3]), W(&[3]), Vals(&[3], &[0.5, 1.0, 2.0])],
            vec![("epsilon", Attr::Float(1e-3))],
            "wgpu.batchnorm",
        ),
        case("resize_nearest_scales", "Resize", vec![X(&[1, 2, 5, 7]), Absent, Vals(&[4], &[1.0, 1.0, 2.0, 1.5])], vec![], "wgpu.resize"),
        case(
            "resize_nearest_floor_asymmetric_down",
            "Resize",
            vec![X(&[1, 1, 8, 8]), Absent, Vals(&[4], &[1.0, 1.0, 0.5, 0.5])],
            vec![("nearest_mode", string("floor")), ("coordinate_transformation_mode", string("asymmetric"))],
            "wgpu.resize",
        ),
        case(
            "resize_linear_sizes_align_corners",
            "Resize",
            vec![X(&[2, 3, 4, 6]), Absent, Absent, Ints(&[2, 3, 7, 9])],
            vec![("mode", string("linear")), ("coordinate_transformation_mode", string("align_corners"))],
            "wgpu.resize",
        ),
        case(
            "resize_linear_pytorch_half_pixel",
            "Resize",
            vec![X(&[1, 2, 3, 3]), Absent, Vals(&[4], &[1.0, 1.0, 2.0, 2.0])],
            vec![("mode", string("linear")), ("coordinate_transformation_mode", string("pytorch_half_pixel"))],
            "wgpu.resize",
        ),
        case(
            "conv_transpose_s2_output_padding",
            "ConvTranspose",
            vec![X(&[1, 4, 5, 6]), W(&[4, 3, 3, 3]), W(&[3])],
            vec![("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 0])), ("output_padding", ints(&[1, 0]))],
            "wgpu.conv_transpose",
        ),
        case(
            "conv_transpose_grouped_dilated",
            "ConvTranspose",
            vec![X(&[2, 4, 3, 4]), W(&[4, 2, 2, 3])],
            vec![("group", Attr::Int(2)), ("dilations", ints(&[2, 1])), ("strides", ints(&[1, 2]))],
            "wgpu.conv_transpose",
        ),
        case(
            "maxpool_pads_ceil",
            "MaxPool",
            vec![X(&[1, 3, 9, 8])],
            vec![("kernel_shape", ints(&[3, 3])), ("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 1])), ("ceil_mode", Attr::Int(1))],
            "wgpu.pool",
        ),
        case(
            "maxpool_dilated_same",
            "MaxPool",
            vec![X(&[2, 2, 7, 7])],
            vec![("kernel_shape", ints(&[2, 3])), ("dilations", ints(&[2, 1])), ("auto_pad", string("SAME_UPPER"))],
            "wgpu.pool",
        ),
        case(
            "avgpool_count_pad",
            "AveragePool",
            vec![X(&[1, 4, 6, 7])],
            vec![
                ("kernel_shape", ints(&[3, 3])),
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[1, 1, 1, 1])),
                ("count_include_pad", Attr::Int(1)),
            ],
            "wgpu.pool",
        ),
        case(
            "avgpool_exclude_pad_ceil",
            "AveragePool",
            vec![X(&[1, 2, 7, 7])],
            vec![("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2])), ("pads", ints(&[0, 0, 1, 1])), ("ceil_mode", Attr::Int(1))],
            "wgpu.pool",
        ),
        case("prelu_channel_slope", "PRelu", vec![X(&[2, 4, 3, 5]), W(&[4, 1, 1])], vec![], "wgpu.elementwise"),
        case(
            "slice_steps_negative",
            "Slice",
            vec![X(&[3, 8, 7]), Ints(&[-1, 1, 100]), Ints(&[-100, 7, 0]), Ints(&[-1, 1, 0]), Ints(&[-2, 3, -1])],
            vec![],
            "wgpu.slice",
        ),
        case("slice_default_axes", "Slice", vec![X(&[5, 6]), Ints(&[1, -4]), Ints(&[4, 1000])], vec![], "wgpu.slice"),
        case("gather_axis1_constant", "Gather", vec![X(&[3, 5, 4]), Ints(&[4, -1, 0])], vec![("axis", Attr::Int(1))], "wgpu.gather"),
    ]
}

#[test]
fn wgsl_kernels_match_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut failures = Vec::new();
    let all = cases();
    for c in &all {
        match run_case(c, None, &off()) {
            Ok(_) => println!("{}: ok ({})", c.name, c.kernel),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n  {}", failures.len(), all.len(), failures.join("\n  "));
}

/// The tuner may pick any variant the adapter allows: each must compute the same thing.
#[test]
fn every_variant_matches_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut failures = Vec::new();
    let all = cases();
    let mut runs = 0;
    for name in [
        "linear_tiles",
        "gemm_transb_bias",
        "fused_matmul_gelu",
        "softmax_long_row",
        "layernorm",
        "fused_conv_grouped_hard_swish",
        "fused_conv_nhwc",
        "conv_tiles",
        "chain_mixed_operands",
        "attention_heads_in_columns_mask",
        "reduce_mean_last",
        "reduce_sum_axes_input",
        "reduce_min_all",
        "global_max_pool",
        "gather_embedding",
        "batchnorm",
        "resize_nearest_scales",
        "resize_linear_sizes_align_corners",
        "conv_transpose_s2_output_padding",
        "maxpool_pads_ceil",
        "avgpool_count_pad",
        "slice_steps_negative",
    ] {
        let Some(c) = all.iter().find(|c| c.name == name) else { panic!("no case {name}") };
        for v in kiln_target_wgpu::kernel_variants(c.kernel) {
            runs += 1;
            if let Err(e) = run_case(c, Some(v), &off()) {
                failures.push(format!("{name} {v}: {e}"));
            }
        }
    }
    println!("{runs} case x variant runs");
    assert!(failures.is_empty(), "{} variant runs failed:\n  {}", failures.len(), failures.join("\n  "));
}

/// Full tuning measures the wgpu steps' variants on the adapter (default first) and records
/// them under the adapter's fingerprint; a second compile replays the record.
#[test]
fn tuning_measures_on_the_adapter_and_replays() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let all = cases();
    let c = all.iter().find(|c| c.name == "linear_tiles").expect("case");
    let dir = tempfile::tempdir().expect("tempdir");
    let full = CompileOptions { tune: TuneMode::Full, cache_dir: Some(dir.path().to_path_buf()), ..CompileOptions::default() };
    let decisions = run_case(c, None, &full).unwrap_or_else(|e| panic!("{e}"));
    let d = decisions.iter().find(|d| d.key.kernel == "wgpu.matmul").unwrap_or_else(|| panic!("no wgpu.matmul decision in {decisions:?}"));
    println!("tuned {}: {} ({}; default {:?} ns, chosen {:?} ns)", d.key.problem, d.chosen, d.source, d.default_ns, d.chosen_ns);
    assert_eq!(d.source, "measured");
    assert_eq!(d.default_variant, kiln_target_wgpu::kernel_variants("wgpu.matmul")[0]);
    assert!(d.default_ns.is_some());
    let fp = kiln_target_wgpu::WgpuTarget.id().fingerprint;
    assert!(fp.starts_with("wgpu/"), "fingerprint {fp}");
    let records = std::fs::read_to_string(dir.path().join("tune-records.json")).expect("records written");
    assert!(records.contains(&fp) && records.contains("wgpu.matmul"), "no wgpu.matmul record under {fp}");
    let cached = CompileOptions { tune: TuneMode::Cache, ..full };
    let again = run_case(c, None, &cached).unwrap_or_else(|e| panic!("{e}"));
    let d2 = again.iter().find(|d| d.key.kernel == "wgpu.matmul").expect("decision");
    assert_eq!((d2.source, d2.chosen.as_str()), ("cache", d.chosen.as_str()));
}

/// A run of a `Net`: (op, kernel) per plan step, the placement, (got, want) per output.
type Outcome = (Vec<(String, String)>, (usize, usize, usize), Vec<(kiln_tensor::Tensor, kiln_tensor::Tensor)>);

/// A small graph for the multi-node tests: an f32 input `x`, int64 constants, opset-17 nodes.
struct Net {
    g: kiln_ir::Graph,
    x: kiln_ir::ValueId,
    shape: Vec<usize>,
}

impl Net {
    fn new(shape: &[usize]) -> Net {
        let mut g = kiln_ir::Graph::new("g");
        let x = g.add_value("x", Some(kiln_tensor::DType::F32), Some(kiln_tensor::Shape::known(shape)));
        g.inputs.push(x);
        Net { g, x, shape: shape.to_vec() }
    }

    /// Makes x's first dimension symbolic.
    fn symbolic_batch(&mut self) {
        if let Some(kiln_tensor::Shape(dims)) = self.g.values[self.x.0].shape.as_mut() {
            dims[0] = kiln_tensor::Dim::Sym("n".into());
        }
    }

    fn constant(&mut self, v: &[i64]) -> kiln_ir::ValueId {
        let id = self.g.add_value(format!("c{}", self.g.initializers.len()), None, None);
        self.g.initializers.insert(id, kiln_tensor::Tensor::from_vec(vec![v.len()], v.to_vec()).expect("constant"));
        id
    }

    fn node(&mut self, op: &str, inputs: &[kiln_ir::ValueId], outputs: usize, attrs: Vec<(&str, Attr)>) -> Vec<kiln_ir::ValueId> {
        let n = self.g.nodes.len();
        let outs: Vec<_> = (0..outputs).map(|j| self.g.add_value(format!("n{n}_{j}"), None, None)).collect();
        self.g.nodes.push(kiln_ir::Node {
            name: format!("n{n}"),
            op_type: op.into(),
            domain: String::new(),
            opset: 17,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: outs.iter().map(|&o| Some(o)).collect(),
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            unsupported: None,
        });
        outs
    }

    /// Compiles for wgpu (tune off) with `outputs` as the graph's outputs, runs seeded `x`
    /// through the plan and the reference: the plan's (op, kernel) per step, its placement,
    /// and (got, want) per output.
    fn run(mut self, outputs: &[kiln_ir::ValueId]) -> Outcome {
        use kiln_reference::Value;
        self.g.outputs.extend(outputs);
        let model = kiln_ir::Model { graph: self.g, ir_version: 8, opsets: [(String::new(), 17)].into(), ..kiln_ir::Model::default() };
        let n = self.shape.iter().product();
        let feed = kiln_tensor::Tensor::from_vec(self.shape, kiln_conformance::single_op::values(n, 1)).expect("x");
        let want = kiln_reference::run(&model, vec![("x".into(), Value::Tensor(feed.clone()))]).expect("reference");
        let target = kiln_target_wgpu::WgpuTarget;
        let compiled = kiln_pipeline::compile_model(model, &target, &off(), None).expect("compile");
        let plan = compiled.plan.expect("plan");
        let kernels = plan.steps.iter().map(|s| (s.op.clone(), s.kernel.clone())).collect();
        let placement = kiln_target_wgpu::placement(&plan);
        let mut exe = target.load(&plan, compiled.weights).expect("load");
        let got = exe.run(vec![("x".into(), feed)]).expect("run");
        assert_eq!(got.len(), want.len());
        let pairs = got
            .into_iter()
            .zip(want)
            .map(|((_, g), (name, w))| match w {
                Value::Tensor(w) => (g, w),
                _ => panic!("reference output {name} is not a tensor"),
            })
            .collect();
        (kernels, placement, pairs)
    }
}

fn check_outputs(pairs: &[(kiln_tensor::Tensor, kiln_tensor::Tensor)]) {
    for (i, (got, want)) in pairs.iter().enumerate() {
        assert_eq!(got.shape(), want.shape(), "output {i}");
        check_close(got, want, 1e-3, "wgpu").unwrap_or_else(|e| panic!("output {i}: {e}"));
    }
}

/// Reshape / Unsqueeze / Squeeze / Flatten between wgpu steps relabel the device value (no
/// transfer, no dispatch) and agree with the reference; one on a host value stays on the CPU.
#[test]
fn reshapes_between_wgpu_steps_stay_on_the_device() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 3, 4]);
    let (shape, shape2, one, one2) = (net.constant(&[0, -1]), net.constant(&[4, -1]), net.constant(&[1]), net.constant(&[-2]));
    // Reshape on the host input stays on the CPU; the rest follow a Softmax on the adapter.
    let mut v = net.node("Reshape", &[net.x, shape], 1, vec![])[0];
    v = net.node("Softmax", &[v], 1, vec![])[0];
    v = net.node("Reshape", &[v, shape2], 1, vec![])[0];
    v = net.node("Tanh", &[v], 1, vec![])[0];
    v = net.node("Unsqueeze", &[v, one], 1, vec![])[0];
    v = net.node("Sigmoid", &[v], 1, vec![])[0];
    v = net.node("Squeeze", &[v, one2], 1, vec![])[0];
    v = net.node("Tanh", &[v], 1, vec![])[0];
    v = net.node("Flatten", &[v], 1, vec![("axis", Attr::Int(0))])[0];
    let (kernels, placement, pairs) = net.run(&[v]);
    println!("{kernels:?}");
    let relabelled = kernels.iter().filter(|(_, k)| k == "wgpu.reshape").count();
    assert_eq!(relabelled, 4, "Reshape, Unsqueeze, Squeeze, Flatten after the Softmax on the adapter: {kernels:?}");
    assert_eq!(placement, (8, 1, 2), "one upload, one readback: {kernels:?}");
    check_outputs(&pairs);
    assert_eq!(pairs[0].0.shape(), &[1, 24]);
}

/// Split on the adapter: every output (sizes from a constant, or equal parts) matches the
/// reference, and the parts stay on the device for the wgpu steps that read them.
#[test]
fn split_outputs_match_the_reference() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 6, 5]);
    let sizes = net.constant(&[1, 3, 2]);
    let s = net.node("Sigmoid", &[net.x], 1, vec![])[0];
    let given = net.node("Split", &[s, sizes], 3, vec![("axis", Attr::Int(1))]);
    let equal = net.node("Split", &[given[1]], 3, vec![("axis", Attr::Int(-2))]);
    let t = net.node("Tanh", &[equal[2]], 1, vec![])[0];
    let (kernels, placement, pairs) = net.run(&[given[0], given[2], equal[0], equal[1], t]);
    assert_eq!(kernels.iter().filter(|(_, k)| k == "wgpu.split").count(), 2, "{kernels:?}");
    assert_eq!(placement, (4, 0, 6), "one upload, five readbacks: {kernels:?}");
    check_outputs(&pairs);
}

/// Shape and Size of a device value come from its device tensor: no readback of the data.
#[test]
fn shape_of_a_device_value_reads_nothing_back() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 3, 4]);
    // A symbolic batch, so the optimizer cannot fold the shape into a constant.
    net.symbolic_batch();
    let s = net.node("Sigmoid", &[net.x], 1, vec![])[0];
    let shape = net.node("Shape", &[s], 1, vec![("start", Attr::Int(-2))])[0];
    let size = net.node("Size", &[s], 1, vec![])[0];
    let t = net.node("Tanh", &[s], 1, vec![])[0];
    let (kernels, placement, pairs) = net.run(&[shape, size, t]);
    assert_eq!(kernels.iter().filter(|(_, k)| k == "wgpu.shape").count(), 2, "{kernels:?}");
    assert_eq!(placement, (4, 0, 2), "one upload, one readback (Tanh's): {kernels:?}");
    for (got, want) in &pairs[..2] {
        assert_eq!((got.shape(), got.to_i64_vec().ok()), (want.shape(), want.to_i64_vec().ok()));
    }
    check_outputs(&pairs[2..]);
}

/// A Reshape whose target shape is computed on the host (Shape of the input there) relabels
/// the device value with it: no readback of the data, no upload of the shape.
#[test]
fn reshape_to_a_shape_computed_on_the_host() {
    if wgpu_common::adapter_or_skip().is_none() {
        return;
    }
    let mut net = Net::new(&[2, 3, 4]);
    // A symbolic batch, so the optimizer cannot fold the shape into a constant.
    net.symbolic_batch();
    let flat = net.constant(&[0, -1]);
    let shape = net.node("Shape", &[net.x], 1, vec![])[0];
    let mut v = net.node("Softmax", &[net.x], 1, vec![])[0];
    v = net.node("Reshape", &[v, flat], 1, vec![])[0];
    v = net.node("Sigmoid", &[v], 1, vec![])[0];
    v = net.node("Reshape", &[v, shape], 1, vec![])[0];
    v = net.node("Softmax", &[v], 1, vec![])[0];
    let (kernels, placement, pairs) = net.run(&[v]);
    println!("{kernels:?}");
    assert_eq!(kernels.iter().filter(|(_, k)| k == "wgpu.reshape").count(), 2, "{kernels:?}");
    assert_eq!(placement.2, 2, "one upload, one readback: {kernels:?}");
    check_outputs(&pairs);
}
