//! Native CPU kernels one op at a time, on shapes and attributes the ONNX node suite does not
//! reach with constant weights: each case is one node with its weights as initializers,
//! compiled for the CPU target (tune off), checked to lower to the expected kernel (a silent
//! fallback to the reference kernel fails the case) and to match the reference executor
//! within 1e-4 relative. The int8 ops (kiln::QMatMul, kiln::QConv) build their models here
//! (int8 / uint8 constants) and match within 1e-5: their integer sums are exact, only the
//! float epilogue rounds differently.

use kiln_conformance::single_op::{Case, In, case, chain_attrs, check_close, check_kernel, ints, model, string};
use kiln_ir::{Attr, Graph, Model, Node};
use kiln_reference::Value;
use kiln_target::{CompileOptions, Target, TuneMode};
use kiln_tensor::{Shape, Tensor};
use std::collections::BTreeMap;

fn run_case(c: &Case) -> Result<(), String> {
    run_built(c, model(c)?, 1e-4)
}

fn run_built(c: &Case, (model, feeds, want): kiln_conformance::single_op::Built, rel: f64) -> Result<(), String> {
    let target = kiln_target_cpu::CpuTarget;
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let compiled = kiln_pipeline::compile_model(model, &target, &opts, None).map_err(|e| format!("compile: {e}"))?;
    let plan = compiled.plan.ok_or("no plan")?;
    check_kernel(c, &plan.steps.iter().map(|s| s.kernel.as_str()).collect::<Vec<_>>())?;
    let mut exe = target.load(&plan, compiled.weights).map_err(|e| format!("load: {e}"))?;
    let got = exe.run(feeds).map_err(|e| format!("run: {e}"))?;
    let (_, got) = got.first().ok_or("no output")?;
    check_close(got, &want, rel, "cpu")
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
        // Windows that tile the output exactly, kw != 2, two images and two groups.
        case("conv_transpose_tiles_3x2", "ConvTranspose", vec![X(&[2, 4, 3, 5]), W(&[4, 2, 2, 3]), W(&[4])], vec![("strides", ints(&[2, 3])), ("group", Attr::Int(2))], "cpu.conv_transpose"),
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
        case("reduce_l2_last", "ReduceL2", vec![X(&[3, 4, 9])], vec![("axes", ints(&[-1]))], "cpu.reduce"),
        case("reduce_l1_mid", "ReduceL1", vec![X(&[2, 5, 6])], vec![("axes", ints(&[1]))], "cpu.reduce"),
        case("reduce_sum_square_all", "ReduceSumSquare", vec![X(&[3, 4, 5])], vec![("keepdims", Attr::Int(0))], "cpu.reduce"),
        case("batchnorm", "BatchNormalization", vec![X(&[2, 3, 4, 5]), W(&[3]), W(&[3]), W(&[3]), Vals(&[3], &[0.5, 1.0, 2.0])], vec![], "cpu.batchnorm"),
        case("global_average_pool", "GlobalAveragePool", vec![X(&[2, 3, 7, 9])], vec![], "cpu.global_pool"),
        case("global_max_pool", "GlobalMaxPool", vec![X(&[1, 4, 3, 5])], vec![], "cpu.global_pool"),
        case("concat_axis1", "Concat", vec![X(&[2, 3, 4]), X(&[2, 1, 4]), W(&[2, 2, 4])], vec![("axis", Attr::Int(1))], "cpu.concat"),
        case("concat_last_negative", "Concat", vec![X(&[3, 2]), X(&[3, 5])], vec![("axis", Attr::Int(-1))], "cpu.concat"),
        // Embedding lookup: a [10, 6] table by [2, 3] token ids (one negative), and along axis 1.
        case("gather_embedding", "Gather", vec![W(&[10, 6]), XInts(&[2, 3], &[0, 9, 3, -1, 3, 4])], vec![], "cpu.gather"),
        case("gather_axis1", "Gather", vec![X(&[2, 5, 3]), XInts(&[4], &[4, 0, -2, 1])], vec![("axis", Attr::Int(1))], "cpu.gather"),
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

/// A kiln::QMatMul / kiln::QConv (or ai.onnx QuantizeLinear / DequantizeLinear) case: the
/// runtime input x, then the other inputs as typed constants (None: absent).
struct QCase {
    name: &'static str,
    domain: &'static str,
    op: &'static str,
    x: Tensor,
    consts: Vec<Option<Tensor>>,
    attrs: Vec<(&'static str, Attr)>,
    kernel: &'static str,
}

fn scalar_f(v: f32) -> Option<Tensor> {
    Some(Tensor::scalar(v))
}

/// Deterministic int8 / uint8 tensors (`signed`: -127..=127, else 0..=255).
fn ints8(shape: &[usize], seed: u64, signed: bool) -> Option<Tensor> {
    let v = kiln_conformance::single_op::values(shape.iter().product(), seed);
    Some(if signed {
        Tensor::from_vec(shape.to_vec(), v.iter().map(|x| (x * 127.0).round() as i8).collect::<Vec<_>>()).expect("tensor")
    } else {
        Tensor::from_vec(shape.to_vec(), v.iter().map(|x| (x * 127.5 + 127.5).round() as u8).collect::<Vec<_>>()).expect("tensor")
    })
}

/// Positive per-channel scales around `base`.
fn scales(n: usize, base: f32) -> Option<Tensor> {
    let v = kiln_conformance::single_op::values(n, 99);
    Some(Tensor::from_vec(vec![n], v.iter().map(|x| base * (1.25 + x)).collect::<Vec<_>>()).expect("tensor"))
}

fn floats(shape: &[usize], seed: u64) -> Option<Tensor> {
    Some(Tensor::from_vec(shape.to_vec(), kiln_conformance::single_op::values(shape.iter().product(), seed)).expect("tensor"))
}

fn q_model(c: &QCase) -> Result<kiln_conformance::single_op::Built, String> {
    let mut g = Graph::new("g");
    let x = c.x.clone();
    let xv = g.add_value("x", Some(x.dtype()), Some(Shape::known(x.shape())));
    g.inputs.push(xv);
    let mut inputs = vec![Some(xv)];
    for (i, t) in c.consts.iter().enumerate() {
        inputs.push(t.as_ref().map(|t| {
            let v = g.add_value(format!("in{}", i + 1), Some(t.dtype()), Some(Shape::known(t.shape())));
            g.initializers.insert(v, t.clone());
            v
        }));
    }
    let out = g.add_value("y", None, None);
    let attrs = c.attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    g.nodes.push(Node {
        name: c.name.into(),
        op_type: c.op.into(),
        domain: c.domain.into(),
        opset: if c.domain.is_empty() { 17 } else { 1 },
        inputs,
        outputs: vec![Some(out)],
        attrs,
        unsupported: None,
    });
    g.outputs.push(out);
    let model =
        Model { graph: g, ir_version: 8, opsets: BTreeMap::from([(String::new(), 17), ("kiln".to_string(), 1)]), ..Model::default() };
    let want = kiln_reference::run(&model, vec![("x".to_string(), Value::Tensor(x.clone()))]).map_err(|e| format!("reference: {e}"))?;
    match want.into_iter().next() {
        Some((_, Value::Tensor(w))) => Ok((model, vec![("x".to_string(), x)], w)),
        _ => Err("the reference executor gave no tensor output".into()),
    }
}

fn q_cases() -> Vec<QCase> {
    let (u8s, i8s) = (|v: u8| Some(Tensor::scalar(v)), |v: i8| Some(Tensor::scalar(v)));
    let act = |a: &str| ("activation", string(a));
    let fx = |shape: &[usize]| Tensor::from_vec(shape.to_vec(), kiln_conformance::single_op::values(shape.iter().product(), 1)).expect("x");
    let mm = |name, x: &[usize], consts, attrs| QCase { name, domain: "kiln", op: "QMatMul", x: fx(x), consts, attrs, kernel: "cpu.qmatmul" };
    let cv = |name, x: &[usize], consts, attrs| QCase { name, domain: "kiln", op: "QConv", x: fx(x), consts, attrs, kernel: "cpu.qconv" };
    let qdq = |name, op, x, consts, attrs| QCase { name, domain: "", op, x, consts, attrs, kernel: "cpu.quantize" };
    vec![
        // Static u8 activation, per-channel symmetric int8 weights, bias, relu, rank-3 A.
        mm(
            "qmatmul_static_u8",
            &[2, 5, 24],
            vec![scalar_f(0.008), u8s(128), ints8(&[24, 20], 2, true), scales(20, 0.01), None, floats(&[20], 3)],
            vec![act("relu")],
        ),
        // Static i8 activation with a zero point, per-tensor int8 weights with a zero point.
        mm("qmatmul_static_i8", &[7, 33], vec![scalar_f(0.009), i8s(-3), ints8(&[33, 17], 4, true), scalar_f(0.02), i8s(5), None], vec![]),
        // Dynamic activation, uint8 weights with per-channel zero points, bias, gelu.
        mm(
            "qmatmul_dynamic_u8_weights",
            &[3, 4, 40],
            vec![None, None, ints8(&[40, 50], 5, false), scales(50, 0.004), ints8(&[50], 6, false), floats(&[50], 7)],
            vec![act("gelu")],
        ),
        // 80 rows: the AMX tile's default range where the CPU has it, the VNNI tile elsewhere.
        mm(
            "qmatmul_80_rows_u8_weights",
            &[2, 40, 72],
            vec![scalar_f(0.008), u8s(128), ints8(&[72, 40], 24, false), scales(40, 0.004), ints8(&[40], 25, false), floats(&[40], 26)],
            vec![act("silu")],
        ),
        mm(
            "qmatmul_dynamic_k_not_multiple_of_4",
            &[9, 3],
            vec![None, None, ints8(&[3, 70], 8, true), scales(70, 0.01), None, None],
            vec![],
        ),
        cv(
            "qconv_1x1_static",
            &[1, 16, 5, 6],
            vec![scalar_f(0.008), u8s(120), ints8(&[8, 16, 1, 1], 9, true), scales(8, 0.01), None, floats(&[8], 10)],
            vec![act("relu")],
        ),
        cv(
            "qconv_3x3_strided_padded_dynamic_u8_weights",
            &[2, 6, 9, 8],
            vec![None, None, ints8(&[10, 6, 3, 3], 11, false), scalar_f(0.01), u8s(131), None],
            vec![("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 1]))],
        ),
        cv(
            "qconv_grouped_static_i8",
            &[1, 8, 7, 7],
            vec![scalar_f(0.009), i8s(4), ints8(&[6, 4, 3, 3], 12, true), scales(6, 0.01), None, floats(&[6], 13)],
            vec![("group", Attr::Int(2)), ("pads", ints(&[1, 0, 1, 2])), ("dilations", ints(&[1, 2]))],
        ),
        cv(
            "qconv_depthwise_static",
            &[2, 5, 8, 8],
            vec![scalar_f(0.008), u8s(128), ints8(&[5, 1, 3, 3], 14, true), scales(5, 0.02), ints8(&[5], 15, true), floats(&[5], 16)],
            vec![
                ("group", Attr::Int(5)),
                ("pads", ints(&[1, 1, 1, 1])),
                ("strides", ints(&[2, 1])),
                act("clip"),
                ("activation_min", Attr::Float(0.0)),
                ("activation_max", Attr::Float(6.0)),
            ],
        ),
        cv(
            "qconv_nhwc_dynamic",
            &[1, 7, 6, 8],
            vec![None, None, ints8(&[12, 8, 3, 3], 17, true), scales(12, 0.01), None, floats(&[12], 18)],
            vec![("layout", string("NHWC")), ("pads", ints(&[1, 1, 1, 1])), act("hard_swish")],
        ),
        cv(
            "qconv_nhwc_grouped_u8_weights",
            &[2, 5, 6, 6],
            vec![scalar_f(0.01), u8s(100), ints8(&[9, 2, 2, 3], 27, false), scales(9, 0.003), ints8(&[9], 28, false), floats(&[9], 29)],
            vec![("layout", string("NHWC")), ("group", Attr::Int(3)), ("strides", ints(&[1, 2])), ("pads", ints(&[0, 1, 1, 0]))],
        ),
        cv(
            "qconv_depthwise_multiplier_2",
            &[1, 3, 7, 6],
            vec![None, None, ints8(&[6, 1, 3, 3], 30, true), scales(6, 0.01), None, floats(&[6], 31)],
            vec![("group", Attr::Int(3)), ("pads", ints(&[1, 1, 1, 1])), act("relu")],
        ),
        cv(
            "qconv_nhwc_depthwise_static_i8",
            &[1, 6, 5, 4],
            vec![scalar_f(0.01), i8s(0), ints8(&[4, 1, 3, 3], 19, true), scales(4, 0.01), None, None],
            vec![("layout", string("NHWC")), ("group", Attr::Int(4)), ("pads", ints(&[1, 1, 1, 1])), ("dilations", ints(&[2, 2])), ("strides", ints(&[1, 2]))],
        ),
        qdq("quantize_per_tensor_u8", "QuantizeLinear", fx(&[3, 50]), vec![scalar_f(0.007), u8s(130)], vec![]),
        qdq("quantize_per_axis_i8", "QuantizeLinear", fx(&[2, 4, 9]), vec![scales(4, 0.01), ints8(&[4], 20, true)], vec![]),
        qdq("quantize_no_zero_point", "QuantizeLinear", fx(&[17]), vec![scalar_f(0.004)], vec![]),
        qdq("dequantize_per_tensor_i8", "DequantizeLinear", ints8(&[5, 7], 21, true).expect("x"), vec![scalar_f(0.02), i8s(-7)], vec![]),
        qdq("dequantize_per_axis_u8", "DequantizeLinear", ints8(&[3, 6], 22, false).expect("x"), vec![scales(6, 0.01), ints8(&[6], 23, false)], vec![("axis", Attr::Int(-1))]),
    ]
}

#[test]
fn quantized_ops_match_the_reference() {
    let all = q_cases();
    let mut failures = Vec::new();
    for q in &all {
        let c = Case { name: q.name, domain: q.domain, op: q.op, inputs: vec![], attrs: vec![], kernel: q.kernel };
        match q_model(q).and_then(|b| run_built(&c, b, 1e-5)) {
            Ok(()) => println!("{}: ok ({})", q.name, q.kernel),
            Err(e) => failures.push(format!("{}: {e}", q.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n  {}", failures.len(), all.len(), failures.join("\n  "));
}

/// Shape arithmetic kept between runs (`shape_memo`): `Reshape(x, Concat(Unsqueeze(Gather(
/// Shape(x), 0)), [-1]))` with x's first dimension symbolic. Every run matches the
/// reference; a run with the shapes of the one before skips the four shape steps, one with
/// new shapes recomputes them.
#[test]
fn shape_arithmetic_is_kept_while_the_shapes_repeat() {
    use kiln_ir::ValueId;
    use kiln_tensor::{DType, Dim};
    let mut g = Graph::new("shapes");
    let x = g.add_value("x", Some(DType::F32), Some(Shape(vec![Dim::Sym("n".into()), Dim::Known(6)])));
    g.inputs.push(x);
    let constant = |g: &mut Graph, name: &str, t: Tensor| {
        let v = g.add_value(name, Some(t.dtype()), Some(Shape::known(t.shape())));
        g.initializers.insert(v, t);
        v
    };
    let zero = constant(&mut g, "zero", Tensor::scalar(0i64));
    let axes = constant(&mut g, "axes", Tensor::from_vec(vec![1], vec![0i64]).expect("axes"));
    let rest = constant(&mut g, "rest", Tensor::from_vec(vec![1], vec![-1i64]).expect("rest"));
    let node = |g: &mut Graph, op: &str, inputs: Vec<ValueId>, out: &str, dtype: DType| {
        let y = g.add_value(out, Some(dtype), None);
        g.nodes.push(Node {
            name: out.into(),
            op_type: op.into(),
            domain: String::new(),
            opset: 17,
            inputs: inputs.into_iter().map(Some).collect(),
            outputs: vec![Some(y)],
            attrs: BTreeMap::new(),
            unsupported: None,
        });
        y
    };
    let s = node(&mut g, "Shape", vec![x], "s", DType::I64);
    let n = node(&mut g, "Gather", vec![s, zero], "n", DType::I64);
    let n1 = node(&mut g, "Unsqueeze", vec![n, axes], "n1", DType::I64);
    let to = node(&mut g, "Concat", vec![n1, rest], "to", DType::I64);
    g.nodes.last_mut().expect("concat").attrs.insert("axis".into(), Attr::Int(0));
    let y = node(&mut g, "Reshape", vec![x, to], "y", DType::F32);
    g.outputs.push(y);
    let model = Model { graph: g, ir_version: 8, opsets: [(String::new(), 17)].into(), ..Model::default() };
    let opts = CompileOptions { tune: TuneMode::Off, ..CompileOptions::default() };
    let compiled = kiln_pipeline::compile_model(model.clone(), &kiln_target_cpu::CpuTarget, &opts, None).expect("compile");
    let plan = compiled.plan.expect("plan");
    let mut exe = kiln_target_cpu::CpuExecutable::load(&plan, compiled.weights).expect("load");
    let mut hits = Vec::new();
    for rows in [2usize, 2, 5, 5, 5, 2] {
        let feed = Tensor::from_vec(vec![rows, 6], (0..rows * 6).map(|i| i as f32).collect::<Vec<_>>()).expect("x");
        let want = kiln_reference::run(&model, vec![("x".into(), Value::Tensor(feed.clone()))]).expect("reference");
        let Value::Tensor(want) = &want[0].1 else { panic!("not a tensor") };
        let got = kiln_target::Executable::run(&mut exe, vec![("x".into(), feed)]).expect("run");
        assert_eq!(&got[0].1, want, "rows {rows}");
        hits.push(exe.shape_memo_hits());
    }
    // Shape, Gather, Unsqueeze and Concat: skipped on the 2nd, 4th and 5th runs only.
    assert_eq!(hits, [0, 4, 4, 8, 12, 12], "{:?}", plan.steps.iter().map(|s| (&s.op, &s.kernel)).collect::<Vec<_>>());
}
