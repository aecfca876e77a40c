//! Native CPU kernels one op at a time, on shapes and attributes the ONNX node suite does not
//! reach with constant weights: each case is one node with its weights as initializers,
//! compiled for the CPU target (tune off), checked to lower to the expected kernel (a silent
//! fallback to the reference kernel fails the case) and to match the reference executor
//! within 1e-4 relative.

use kiln_conformance::single_op::{Case, In, case, chain_attrs, check_close, check_kernel, ints, model, string};
use kiln_ir::Attr;
use kiln_target::{CompileOptions, Target, TuneMode};

fn run_case(c: &Case) -> Result<(), String> {
    let (model, feeds, want) = model(c)?;
    let target = kiln_target_cpu::CpuTarget;
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let compiled = kiln_pipeline::compile_model(model, &target, &opts, None).map_err(|e| format!("compile: {e}"))?;
    let plan = compiled.plan.ok_or("no plan")?;
    check_kernel(c, &plan.steps.iter().map(|s| s.kernel.as_str()).collect::<Vec<_>>())?;
    let mut exe = target.load(&plan, compiled.weights).map_err(|e| format!("load: {e}"))?;
    let got = exe.run(feeds).map_err(|e| format!("run: {e}"))?;
    let (_, got) = got.first().ok_or("no output")?;
    check_close(got, &want, 1e-4, "cpu")
}

fn cases() -> Vec<Case> {
    use In::*;
    vec![
        case("add_row", "Add", vec![X(&[2, 3, 8]), W(&[8])], vec![], "cpu.elementwise"),
        case("mul_channel", "Mul", vec![X(&[2, 4, 5, 5]), W(&[1, 4, 1, 1])], vec![], "cpu.elementwise"),
        case("sub_scalar_left", "Sub", vec![W(&[]), X(&[3, 7])], vec![], "cpu.elementwise"),
        case("div_general", "Div", vec![X(&[3, 1, 6]), X(&[1, 4, 1])], vec![], "cpu.elementwise"),
        case("hard_sigmoid", "HardSigmoid", vec![X(&[4, 33])], vec![("alpha", Attr::Float(0.3))], "cpu.elementwise"),
        case("clip_inputs", "Clip", vec![X(&[5, 9]), Vals(&[], &[-0.25]), Vals(&[], &[0.5])], vec![], "cpu.elementwise"),
        case("softmax_last", "Softmax", vec![X(&[2, 3, 17])], vec![], "cpu.rows"),
        case("layernorm", "LayerNormalization", vec![X(&[2, 5, 16]), W(&[16]), W(&[16])], vec![("epsilon", Attr::Float(1e-3))], "cpu.rows"),
        case("layernorm_2axes", "LayerNormalization", vec![X(&[3, 4, 6]), W(&[4, 6])], vec![("axis", Attr::Int(1))], "cpu.rows"),
        case("transpose_heads", "Transpose", vec![X(&[2, 7, 3, 4])], vec![("perm", ints(&[0, 2, 1, 3]))], "cpu.transpose"),
        case("transpose_reverse", "Transpose", vec![X(&[2, 3, 5])], vec![], "cpu.transpose"),
        case("conv_transpose_s2", "ConvTranspose", vec![X(&[1, 6, 5, 4]), W(&[6, 3, 2, 2]), W(&[3])], vec![("strides", ints(&[2, 2]))], "cpu.conv_transpose"),
        case(
            "conv_transpose_pads_dil_groups",
            "ConvTranspose",
            vec![X(&[2, 4, 4, 5]), W(&[4, 3, 3, 3])],
            vec![("strides", ints(&[2, 1])), ("pads", ints(&[1, 0, 0, 1])), ("dilations", ints(&[1, 2])), ("group", Attr::Int(2)), ("output_padding", ints(&[1, 0]))],
            "cpu.conv_transpose",
        ),
        case(
            "resize_nearest_floor_asym",
            "Resize",
            vec![X(&[1, 3, 5, 7]), Vals(&[0], &[]), Vals(&[4], &[1.0, 1.0, 2.0, 2.0])],
            vec![("mode", string("nearest")), ("coordinate_transformation_mode", string("asymmetric")), ("nearest_mode", string("floor"))],
            "cpu.resize",
        ),
        case("resize_nearest_default_down", "Resize", vec![X(&[2, 2, 9, 8]), Vals(&[0], &[]), Vals(&[4], &[1.0, 1.0, 0.6, 0.5])], vec![], "cpu.resize"),
        case("resize_linear_half_pixel", "Resize", vec![X(&[1, 2, 6, 5]), Vals(&[0], &[]), Vals(&[4], &[1.0, 1.0, 2.5, 1.5])], vec![("mode", string("linear"))], "cpu.resize"),
        case(
            "resize_linear_align_corners_sizes",
            "Resize",
            vec![X(&[1, 2, 6, 5]), Absent, Absent, Ints(&[1, 2, 11, 3])],
            vec![("mode", string("linear")), ("coordinate_transformation_mode", string("align_corners"))],
            "cpu.resize",
        ),
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
                ("activation", string("hard_swish")),
            ],
            kernel: "cpu.conv2d",
        },
        Case {
            name: "fused_conv_nhwc_depthwise",
            domain: "kiln",
            op: "FusedConv",
            inputs: vec![X(&[2, 8, 8, 5]), W(&[5, 1, 3, 3])],
            attrs: vec![("layout", string("NHWC")), ("group", Attr::Int(5)), ("pads", ints(&[1, 1, 1, 1]))],
            kernel: "cpu.conv2d",
        },
        case("reduce_mean_hw_nhwc", "ReduceMean", vec![X(&[2, 5, 6, 7])], vec![("axes", ints(&[1, 2]))], "cpu.reduce"),
        case("reduce_sum_last_drop", "ReduceSum", vec![X(&[3, 4, 9]), Ints(&[-1])], vec![("keepdims", Attr::Int(0))], "cpu.reduce"),
        case("reduce_max_all", "ReduceMax", vec![X(&[3, 4, 5])], vec![], "cpu.reduce"),
        case("batchnorm", "BatchNormalization", vec![X(&[2, 3, 4, 5]), W(&[3]), W(&[3]), W(&[3]), Vals(&[3], &[0.5, 1.0, 2.0])], vec![], "cpu.batchnorm"),
        case("global_average_pool", "GlobalAveragePool", vec![X(&[2, 3, 7, 9])], vec![], "cpu.global_pool"),
        case("global_max_pool", "GlobalMaxPool", vec![X(&[1, 4, 3, 5])], vec![], "cpu.global_pool"),
        case("concat_axis1", "Concat", vec![X(&[2, 3, 4]), X(&[2, 1, 4]), W(&[2, 2, 4])], vec![("axis", Attr::Int(1))], "cpu.concat"),
        case("concat_last_negative", "Concat", vec![X(&[3, 2]), X(&[3, 5])], vec![("axis", Attr::Int(-1))], "cpu.concat"),
        Case {
            name: "chain_mixed_operands",
            domain: "kiln",
            op: "Chain",
            // Scalar, per-channel column, a row that needs the column's row length (expanded),
            // a full operand on the left of a Sub, then Clip and GELU.
            inputs: vec![X(&[1, 4, 5, 5]), Vals(&[], &[0.75]), W(&[1, 4, 1, 1]), W(&[5]), X(&[1, 4, 5, 5])],
            attrs: chain_attrs(&[("HardSwish", -1, 0), ("Mul", 1, 0), ("Add", 2, 0), ("Div", 3, 0), ("Sub", 4, 1), ("Clip", -1, 0), ("GeluTanh", -1, 0)], -0.5, 0.5),
            kernel: "cpu.chain",
        },
        Case {
            name: "chain_rows",
            domain: "kiln",
            op: "Chain",
            inputs: vec![X(&[3, 16]), W(&[16]), Vals(&[], &[2.0])],
            attrs: chain_attrs(&[("Add", 1, 0), ("Sigmoid", -1, 0), ("Max", 2, 1), ("Sqrt", -1, 0)], 0.0, 0.0),
            kernel: "cpu.chain",
        },
        Case {
            name: "attention_mask",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[2, 3, 9, 8]), X(&[2, 3, 11, 8]), X(&[2, 3, 11, 5]), X(&[2, 1, 1, 11])],
            attrs: vec![("scale", Attr::Float(0.35))],
            kernel: "cpu.attention",
        },
        Case {
            name: "attention_k_transposed_one_kv_head",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[1, 4, 6, 8]), X(&[1, 1, 8, 7]), X(&[1, 1, 7, 8])],
            attrs: vec![("k_transposed", Attr::Int(1))],
            kernel: "cpu.attention",
        },
        Case {
            name: "attention_heads_in_columns",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[2, 9, 24]), X(&[2, 11, 24]), X(&[2, 11, 15]), X(&[2, 1, 1, 11])],
            attrs: vec![("num_heads", Attr::Int(3)), ("scale", Attr::Float(0.35))],
            kernel: "cpu.attention",
        },
        Case {
            name: "attention_packed_qkv",
            domain: "kiln",
            op: "Attention",
            inputs: vec![X(&[1, 70, 48]), Absent, Absent, X(&[1, 1, 1, 70])],
            attrs: vec![("num_heads", Attr::Int(2))],
            kernel: "cpu.attention",
        },
    ]
}

#[test]
fn native_ops_match_the_reference() {
    let mut failures = Vec::new();
    let all = cases();
    for c in &all {
        match run_case(c) {
            Ok(()) => println!("{}: ok ({})", c.name, c.kernel),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n  {}", failures.len(), all.len(), failures.join("\n  "));
}
