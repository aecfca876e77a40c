//! The single-op cases the wgpu tests share: each one node with its weights as initializers,
//! the wgpu kernel it must land on, and how a case is compiled, run and checked.

use kiln_conformance::single_op::{Case, In, case, chain_attrs, check_close, check_kernel, ints, model, string};
use kiln_ir::Attr;
use kiln_target::{CompileOptions, FloatPrecision, Target, TuneMode};

/// Tolerance of the f32 cases, relative to max(1, max |reference|).
pub const F32_TOL: f64 = 1e-3;

/// Tolerance of the f16 cases. f16 keeps 11 significant bits: each rounding (the input,
/// the weights, every stored intermediate) is off by at most 2^-11 = 4.9e-4 relative, a
/// case passes 3 to 5 of them, and a K-term product sums K f16-rounded products (in f32),
/// whose errors grow like sqrt(K) x 4.9e-4 (K <= 130 here: 5.6e-3 at worst). 1e-2 is
/// that budget; an f32 kernel mistakenly fed f16 bits or a wrong index is off by O(1).
pub const F16_TOL: f64 = 1e-2;

/// Compiles and runs a case on the wgpu target: (tuning decisions, max |wgpu - reference|
/// relative to max(1, max |reference|)). With `opts.float` f16 on an adapter that has it,
/// every step of the case's kernel must say f16 when that kernel has an f16 form (an f32
/// step there is a silent downgrade) and the tolerance is [`F16_TOL`].
pub fn run_case(c: &Case, variant: Option<&str>, opts: &CompileOptions) -> Result<(Vec<kiln_target::TuneDecision>, f64), String> {
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
    let f16 = opts.float == FloatPrecision::F16 && kiln_target_wgpu::f16_support().is_ok();
    let stored = |s: &kiln_target::Step| match s.attrs.get(kiln_target::PRECISION_ATTR) {
        Some(kiln_target::AttrValue::String(p)) => p.clone(),
        _ => "f32".into(),
    };
    for s in plan.steps.iter().filter(|s| s.kernel == c.kernel) {
        let want = if f16 && kiln_target_wgpu::kernel_takes_f16(&s.kernel) { "f16" } else { "f32" };
        if stored(s) != want {
            return Err(format!("{} step '{}' stores {}, expected {want}", s.kernel, s.node, stored(s)));
        }
    }
    let mut exe = target.load(&plan, compiled.weights).map_err(|e| format!("load: {e}"))?;
    let got = exe.run(feeds).map_err(|e| format!("run: {e}"))?;
    let (_, got) = got.first().ok_or("no output")?;
    let tol = if f16 { F16_TOL } else { F32_TOL };
    check_close(got, &want, tol, "wgpu")?;
    let (diff, scale) = kiln_conformance::models::max_abs_diff(got, &want)?;
    Ok((compiled.tune, diff / scale.max(1.0)))
}

pub fn off() -> CompileOptions {
    CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() }
}

pub fn cases() -> Vec<Case> {
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
        // The register-blocked GEMM's vec4 paths (K % 4 == 0 for A, N % 4 == 0 for B and Y)
        // with K below its BK and M, N off its tiles; transB with K % 4 != 0 (scalar loads).
        Case {
            name: "fused_matmul_vec4_relu",
            domain: "kiln",
            op: "FusedMatMul",
            inputs: vec![X(&[37, 12]), W(&[12, 100]), W(&[100])],
            attrs: vec![("activation", string("relu"))],
            kernel: "wgpu.matmul",
        },
        case("gemm_transb_odd_k", "Gemm", vec![X(&[5, 9]), W(&[66, 9]), W(&[66])], vec![("transB", Attr::Int(1))], "wgpu.matmul"),
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

/// Every variant of the kernels of a spread of cases (each kernel family, each layout) under
/// `opts`: all must match the reference.
pub fn check_every_variant(opts: &CompileOptions) {
    let all = cases();
    let mut failures = Vec::new();
    let mut runs = 0;
    for name in [
        "linear_tiles",
        "gemm_transb_bias",
        "fused_matmul_gelu",
        "fused_matmul_vec4_relu",
        "gemm_transb_odd_k",
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
            if let Err(e) = run_case(c, Some(v), opts) {
                failures.push(format!("{name} {v}: {e}"));
            }
        }
    }
    println!("{runs} case x variant runs ({})", opts.float.name());
    assert!(failures.is_empty(), "{} variant runs failed:\n  {}", failures.len(), failures.join("\n  "));
}
