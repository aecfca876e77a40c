//! Model-local functions expanded at import (fixtures: testdata/functions/, written by
//! testdata/functions/make.py; expected outputs from numpy, checked against onnxruntime).

use kiln_ir::{Model, Node};
use kiln_onnx::proto::{self as pb, Message};
use kiln_reference::Value;
use kiln_tensor::Tensor;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/functions")
}

fn load(case: &str) -> Model {
    let path = dir().join(format!("{case}.onnx"));
    assert!(path.is_file(), "fixture {} missing: run python3 testdata/functions/make.py", path.display());
    match kiln_onnx::load(&path, &kiln_reference::op_set()) {
        Ok(m) => m,
        Err(e) => panic!("{case} should import: {e}"),
    }
}

fn tensors(dir: &Path, kind: &str) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{kind}_{i}.pb"));
        if !p.is_file() {
            break;
        }
        let bytes = std::fs::read(&p).expect("read tensor file");
        out.push(kiln_onnx::read_tensor_file(&bytes).expect("tensor file"));
    }
    out
}

/// Runs every data set of a case through the reference executor and compares exactly (the
/// ops involved are exact in f32 up to the MatMul sums, which are short).
fn run_case(case: &str) -> Model {
    let m = load(case);
    let unsupported: Vec<String> = m.all_nodes().iter().filter(|n| n.unsupported.is_some()).map(|n| n.qualified_op()).collect();
    assert!(unsupported.is_empty(), "{case}: unsupported after expansion: {unsupported:?}");
    let mut sets = 0;
    for k in 0.. {
        let d = dir().join(case).join(format!("set_{k}"));
        if !d.is_dir() {
            break;
        }
        sets += 1;
        let inputs = tensors(&d, "input").into_iter().map(|(n, t)| (n, Value::Tensor(t))).collect();
        let out = kiln_reference::run(&m, inputs).unwrap_or_else(|e| panic!("{case} set_{k} runs: {e}"));
        let want = tensors(&d, "output");
        assert_eq!(out.len(), want.len(), "{case} set_{k}: output count");
        for ((name, got), (want_name, want)) in out.iter().zip(&want) {
            assert_eq!(name, want_name, "{case} set_{k}: output order");
            let got = got.as_tensor().expect("tensor output");
            assert_eq!(got.shape(), want.shape(), "{case} set_{k}: {name} shape");
            let (g, w) = (got.to_f64_vec().expect("numeric"), want.to_f64_vec().expect("numeric"));
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{case} set_{k}: {name}[{i}] = {a}, want {b}");
            }
        }
    }
    assert!(sets > 0, "{case} has no data sets");
    m
}

fn node<'m>(m: &'m Model, name: &str) -> &'m Node {
    m.all_nodes().into_iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node '{name}'"))
}

#[test]
fn a_function_called_twice_runs() {
    let m = run_case("linear_relu");
    let g = &m.graph;
    assert_eq!(g.nodes.len(), 6, "two calls of three nodes each");
    assert!(g.nodes.iter().all(|n| n.domain.is_empty()), "no call to the local domain is left");
    // The call's alpha replaces the reference; the unnamed call gets the function's default.
    assert_eq!(node(&m, "layer1/act").attr_float("alpha"), Some(0.2));
    assert_eq!(node(&m, "LinearRelu_1/act").attr_float("alpha"), Some(0.01));
}

#[test]
fn a_function_calling_functions_runs_under_its_own_opset() {
    let m = run_case("nested");
    let ops: Vec<(&str, &str, i64)> = m.graph.nodes.iter().map(|n| (n.name.as_str(), n.op_type.as_str(), n.opset)).collect();
    assert_eq!(
        ops,
        [
            ("outer/first/Sub_0", "Sub", 18),
            ("outer/first/LeakyRelu_1", "LeakyRelu", 18),
            ("outer/second/Sub_0", "Sub", 18),
            ("outer/second/LeakyRelu_1", "LeakyRelu", 18),
            ("outer/square", "Mul", 17),
        ],
        "Inner imports ai.onnx 18, Outer 17"
    );
    // A reference to Outer's `gain`, passed on as Inner's `alpha`.
    assert_eq!(node(&m, "outer/first/LeakyRelu_1").attr_float("alpha"), Some(0.1));
    assert_eq!(node(&m, "outer/second/LeakyRelu_1").attr_float("alpha"), Some(0.5));
}

#[test]
fn omitted_optional_inputs_are_absent_in_the_body() {
    let m = run_case("optional_input");
    let g = &m.graph;
    let clip = |name: &str| node(&m, name).inputs.iter().map(|i| i.map(|v| g.value(v).name.clone())).collect::<Vec<_>>();
    assert_eq!(clip("low_only/Clip_0"), [Some("X".into()), Some("L".into()), None]);
    assert_eq!(clip("high_only/Clip_0"), [Some("X".into()), None, Some("H".into())]);
    // Outputs the call does not ask for still get a (private) name.
    let neg = node(&m, "low_only/Neg_1");
    assert_eq!(neg.outputs.iter().map(|o| o.map(|v| g.value(v).name.clone())).collect::<Vec<_>>(), [Some("low_only/N".into())]);
}

#[test]
fn calls_inside_subgraphs_and_subgraphs_inside_functions_run() {
    let m = run_case("in_subgraph");
    // The main If's then-branch called Scale; Scale's own If reads its attribute in a branch.
    let k = m.all_nodes().into_iter().find(|n| n.op_type == "Constant").expect("Constant from Scale's body");
    assert_eq!(k.attr_float("value_float"), Some(3.0));
    assert!(m.all_nodes().iter().all(|n| n.domain.is_empty()));
}

#[test]
fn recursion_is_refused_naming_the_function() {
    let e = kiln_onnx::load(&dir().join("recursive.onnx"), &kiln_reference::op_set()).expect_err("recursive functions are refused");
    let msg = e.to_string();
    assert!(msg.contains("local function 'local::F'"), "{msg}");
    assert!(msg.contains("recursive (local::F -> local::G -> local::F)"), "{msg}");
}

#[test]
fn expansion_naming_is_stable() {
    let m = load("linear_relu");
    insta::assert_snapshot!(kiln_ir::dump(&m), @r#"
    model ir_version=10 opsets=[ai.onnx=18, local=1]
    producer "kiln testdata/functions/make.py" ""
    graph "main" {
      input %X: f32[2,3]
      init %W1 = f32[3,4] <12 values>
      init %B1 = f32[4] [0.10000000149011612, -0.20000000298023224, 0.30000001192092896, -0.4000000059604645]
      init %W2 = f32[4,2] [1, -1, 0.5, 2, -2, 0.25, 1, 1]
      init %B2 = f32[2] [-0.5, 0.5]
      %layer1/XW: ?[?] = MatMul(%X, %W1)  # layer1/mm
      %layer1/Z: ?[?] = Add(%layer1/XW, %B1)  # layer1/bias
      %H: ?[?] = LeakyRelu(%layer1/Z) {alpha=0.2}  # layer1/act
      %LinearRelu_1/XW: ?[?] = MatMul(%H, %W2)  # LinearRelu_1/mm
      %LinearRelu_1/Z: ?[?] = Add(%LinearRelu_1/XW, %B2)  # LinearRelu_1/bias
      %Y: f32[2,2] = LeakyRelu(%LinearRelu_1/Z) {alpha=0.01}  # LinearRelu_1/act
      output %Y: f32[2,2]
    }
    "#);
}

// Edge cases on models built here (onnx_protobuf messages), not from fixtures.


fn pnode(op: &str, domain: &str, ins: &[&str], outs: &[&str], name: &str) -> pb::NodeProto {
    let mut n = pb::NodeProto::new();
    n.op_type = op.into();
    n.domain = domain.into();
    n.input = ins.iter().map(|s| s.to_string()).collect();
    n.output = outs.iter().map(|s| s.to_string()).collect();
    n.name = name.into();
    n
}

fn opset(domain: &str, version: i64) -> pb::OperatorSetIdProto {
    let mut o = pb::OperatorSetIdProto::new();
    o.domain = domain.into();
    o.version = version;
    o
}

fn pfunc(name: &str, ins: &[&str], outs: &[&str], nodes: Vec<pb::NodeProto>) -> pb::FunctionProto {
    let mut f = pb::FunctionProto::new();
    f.name = name.into();
    f.domain = "local".into();
    f.input = ins.iter().map(|s| s.to_string()).collect();
    f.output = outs.iter().map(|s| s.to_string()).collect();
    f.node = nodes;
    f.opset_import = vec![opset("", 18), opset("local", 1)];
    f
}

fn pgraph(name: &str, nodes: Vec<pb::NodeProto>, ins: &[&str], outs: &[&str]) -> pb::GraphProto {
    let vi = |n: &&str| {
        let mut v = pb::ValueInfoProto::new();
        v.name = n.to_string();
        v
    };
    let mut g = pb::GraphProto::new();
    g.name = name.into();
    g.node = nodes;
    g.input = ins.iter().map(vi).collect();
    g.output = outs.iter().map(vi).collect();
    g
}

fn import(nodes: Vec<pb::NodeProto>, ins: &[&str], outs: &[&str], funcs: Vec<pb::FunctionProto>) -> Result<Model, kiln_onnx::OnnxError> {
    let mut m = pb::ModelProto::new();
    m.ir_version = 10;
    m.opset_import = vec![opset("", 18), opset("local", 1)];
    m.graph = Some(pgraph("main", nodes, ins, outs)).into();
    m.functions = funcs;
    let bytes = m.write_to_bytes().expect("serialize");
    kiln_onnx::import_bytes(&bytes, None, &kiln_reference::op_set())
}

fn run_f32(m: &Model, inputs: &[(&str, &[f32])]) -> Vec<Vec<f32>> {
    let inputs = inputs
        .iter()
        .map(|(n, v)| (n.to_string(), Value::Tensor(Tensor::from_vec(vec![v.len()], v.to_vec()).expect("tensor"))))
        .collect();
    let out = kiln_reference::run(m, inputs).unwrap_or_else(|e| panic!("runs: {e}"));
    out.iter().map(|(_, v)| v.as_tensor().expect("tensor").as_slice::<f32>().expect("f32").to_vec()).collect()
}

fn has_value(m: &Model, name: &str) -> bool {
    m.graph.value_by_name(name).is_some()
}

#[test]
fn expansion_prefixes_never_clash_with_model_names() {
    let f = pfunc("F", &["X"], &["Y"], vec![pnode("Neg", "", &["X"], &["t"], ""), pnode("Neg", "", &["t"], &["Y"], "")]);
    let nodes = vec![
        pnode("F", "local", &["X"], &["Y"], "c"),
        pnode("Add", "", &["Y", "c/t"], &["Z"], "add"),
        pnode("F", "local", &["Z"], &["W"], "c"),
        pnode("F", "local", &["W"], &["V"], ""),
    ];
    let m = import(nodes, &["X", "c/t"], &["V"], vec![f]).expect("imports");
    // "c/t" is a graph input, so the first call named "c" takes "c#1/", the second "c#2/".
    for name in ["c#1/t", "c#2/t", "F_3/t"] {
        assert!(has_value(&m, name), "{name} in {}", kiln_ir::dump(&m));
    }
    assert_eq!(run_f32(&m, &[("X", &[1.0, -2.0]), ("c/t", &[0.5, 0.5])]), [[1.5, -1.5]]);
}

#[test]
fn outputs_left_off_and_inputs_passed_straight_through() {
    // G(X) -> (X, N): its first output is its input.
    let g = pfunc("G", &["X"], &["X", "N"], vec![pnode("Neg", "", &["X"], &["N"], "")]);
    let nodes = vec![pnode("G", "local", &["A"], &["P"], "first"), pnode("G", "local", &["A"], &["", "Q"], "second")];
    let m = import(nodes, &["A"], &["P", "Q"], vec![g]).expect("imports");
    assert_eq!(node(&m, "first/X_passthrough").op_type, "Identity");
    assert!(has_value(&m, "first/N"), "the output the call leaves off gets a private name");
    assert_eq!(run_f32(&m, &[("A", &[1.0, -3.0])]), [[1.0, -3.0], [-1.0, 3.0]]);
}

#[test]
fn an_attribute_reference_without_a_value_is_dropped() {
    let mut act = pnode("LeakyRelu", "", &["X"], &["Y"], "act");
    let mut r = pb::AttributeProto::new();
    r.name = "alpha".into();
    r.ref_attr_name = "slope".into();
    r.type_ = pb::attribute_proto::AttributeType::FLOAT.into();
    act.attribute.push(r);
    let mut f = pfunc("F", &["X"], &["Y"], vec![act]);
    f.attribute = vec!["slope".into()];
    let m = import(vec![pnode("F", "local", &["X"], &["Y"], "call")], &["X"], &["Y"], vec![f]).expect("imports");
    assert_eq!(node(&m, "call/act").attr("alpha"), None);
    assert_eq!(run_f32(&m, &[("X", &[-100.0, 2.0])]), [[-1.0, 2.0]], "LeakyRelu's own default alpha, 0.01");
}

#[test]
fn a_reference_outside_a_function_is_an_error() {
    let mut n = pnode("LeakyRelu", "", &["X"], &["Y"], "act");
    let mut r = pb::AttributeProto::new();
    r.name = "alpha".into();
    r.ref_attr_name = "slope".into();
    n.attribute.push(r);
    let e = import(vec![n], &["X"], &["Y"], vec![]).expect_err("no function to refer to").to_string();
    assert!(e.contains("refers to function attribute 'slope' outside a function body"), "{e}");
}

#[test]
fn a_call_with_too_many_inputs_is_an_error() {
    let f = pfunc("F", &["X"], &["Y"], vec![pnode("Neg", "", &["X"], &["Y"], "")]);
    let e = import(vec![pnode("F", "local", &["X", "X"], &["Y"], "call")], &["X"], &["Y"], vec![f]).expect_err("arity").to_string();
    assert!(e.contains("node 'call' (F): calls local function 'local::F' with 2 inputs and 1 outputs, but it declares 1 and 1"), "{e}");
}

#[test]
fn recursion_through_a_subgraph_is_refused() {
    let then_g = pgraph("then", vec![pnode("F", "local", &["C"], &["t"], "")], &[], &["t"]);
    let else_g = pgraph("else", vec![pnode("Identity", "", &["C"], &["e"], "")], &[], &["e"]);
    let mut iff = pnode("If", "", &["C"], &["Y"], "");
    for (name, g) in [("then_branch", then_g), ("else_branch", else_g)] {
        let mut a = pb::AttributeProto::new();
        a.name = name.into();
        a.type_ = pb::attribute_proto::AttributeType::GRAPH.into();
        a.g = Some(g).into();
        iff.attribute.push(a);
    }
    let f = pfunc("F", &["C"], &["Y"], vec![iff]);
    let e = import(vec![pnode("F", "local", &["C"], &["Y"], "")], &["C"], &["Y"], vec![f]).expect_err("recursive").to_string();
    assert!(e.contains("local function 'local::F': is recursive (local::F -> local::F)"), "{e}");
}

#[test]
fn exponential_expansion_is_refused_before_it_happens() {
    // F0 calls F1 twice, F1 calls F2 twice, ...: 2^24 leaf nodes.
    let depth = 24;
    let mut funcs = Vec::new();
    for d in 0..depth {
        let next = format!("F{}", d + 1);
        funcs.push(pfunc(&format!("F{d}"), &["X"], &["Y"], vec![
            pnode(&next, "local", &["X"], &["T"], "a"),
            pnode(&next, "local", &["T"], &["Y"], "b"),
        ]));
    }
    funcs.push(pfunc(&format!("F{depth}"), &["X"], &["Y"], vec![pnode("Neg", "", &["X"], &["Y"], "")]));
    let e = import(vec![pnode("F0", "local", &["X"], &["Y"], "top")], &["X"], &["Y"], funcs).expect_err("too large").to_string();
    assert!(e.contains("16777216 nodes or more, over Kiln's limit of 1000000"), "{e}");
}

#[test]
fn call_chains_deeper_than_the_limit_are_refused() {
    let depth = 100;
    let mut funcs: Vec<pb::FunctionProto> =
        (0..depth).map(|d| pfunc(&format!("F{d}"), &["X"], &["Y"], vec![pnode(&format!("F{}", d + 1), "local", &["X"], &["Y"], "")])).collect();
    funcs.push(pfunc(&format!("F{depth}"), &["X"], &["Y"], vec![pnode("Neg", "", &["X"], &["Y"], "")]));
    let e = import(vec![pnode("F0", "local", &["X"], &["Y"], "")], &["X"], &["Y"], funcs).expect_err("too deep").to_string();
    assert!(e.contains("local function 'local::F64': is called 64 calls deep"), "{e}");
    assert!(e.contains("deeper than Kiln's limit of 64"), "{e}");
    // 64 levels are expanded.
    let mut funcs: Vec<pb::FunctionProto> =
        (0..63).map(|d| pfunc(&format!("F{d}"), &["X"], &["Y"], vec![pnode(&format!("F{}", d + 1), "local", &["X"], &["Y"], "")])).collect();
    funcs.push(pfunc("F63", &["X"], &["Y"], vec![pnode("Neg", "", &["X"], &["Y"], "")]));
    let m = import(vec![pnode("F0", "local", &["X"], &["Y"], "")], &["X"], &["Y"], funcs).expect("64 deep imports");
    assert_eq!(run_f32(&m, &[("X", &[2.0])]), [[-2.0]]);
}
