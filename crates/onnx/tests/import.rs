//! Import features on small valid fixtures (testdata/malformed/valid/, written by
//! testdata/malformed/make.py).

use kiln_ir::{Attr, Graph, Model, OpSet};
use kiln_tensor::{DType, Dim, Tensor};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/malformed/valid").join(name)
}

fn load_with(name: &str, ops: &OpSet) -> Model {
    let path = fixture(name);
    assert!(path.is_file(), "fixture {} missing: run python3 testdata/malformed/make.py", path.display());
    match kiln_onnx::load(&path, ops) {
        Ok(m) => m,
        Err(e) => panic!("{name} should import: {e}"),
    }
}

fn load(name: &str) -> Model {
    load_with(name, &OpSet::new("test"))
}

fn init<'g>(g: &'g Graph, name: &str) -> &'g Tensor {
    let v = g.value_by_name(name).unwrap_or_else(|| panic!("no value '{name}'"));
    g.initializers.get(&v).unwrap_or_else(|| panic!("'{name}' is not an initializer"))
}

#[test]
fn external_data_inside_the_folder() {
    let m = load("external.onnx");
    let w = init(&m.graph, "W");
    assert_eq!(w.shape(), &[2, 3]);
    assert_eq!(w.as_slice::<f32>().expect("f32"), &[1.5, -2.0, 3.25, 0.0, 4.0, -0.5]);
    let info = m.graph.value(m.graph.value_by_name("W").expect("W"));
    assert_eq!(info.dtype, Some(DType::F32));
}

/// A model loaded by a bare file name resolves external data against the current directory.
#[test]
fn external_data_with_a_bare_file_name() {
    let dir = fixture("");
    let prev = std::env::current_dir().expect("cwd");
    std::env::set_current_dir(&dir).expect("chdir");
    let r = kiln_onnx::load(std::path::Path::new("external.onnx"), &OpSet::new("test"));
    std::env::set_current_dir(prev).expect("chdir back");
    let m = r.expect("bare file name should import");
    assert_eq!(init(&m.graph, "W").len(), 6);
}

#[test]
fn sparse_initializers_densify() {
    let m = load("sparse.onnx");
    let s = init(&m.graph, "S_linear");
    assert_eq!(s.shape(), &[3, 4]);
    let mut want = vec![0.0f32; 12];
    want[1] = 1.5;
    want[6] = -2.0;
    want[11] = 7.0;
    assert_eq!(s.as_slice::<f32>().expect("f32"), want.as_slice());

    let c = init(&m.graph, "S_coo");
    assert_eq!(c.shape(), &[3, 4]);
    let mut want = vec![0i64; 12];
    want[2] = 4; // (0, 2)
    want[11] = 9; // (2, 3)
    assert_eq!(c.as_slice::<i64>().expect("i64"), want.as_slice());
}

#[test]
fn if_subgraph_reads_an_outer_value() {
    let m = load("if_outer.onnx");
    kiln_ir::verify(&m).expect("verifies");
    let node = m.graph.nodes.iter().find(|n| n.op_type == "If").expect("If node");
    for branch in ["then_branch", "else_branch"] {
        let g = node.attr_graph(branch).unwrap_or_else(|| panic!("{branch} missing"));
        let free: Vec<&str> = g.free_values().iter().map(|&v| g.value(v).name.as_str()).collect();
        assert_eq!(free, ["outer"], "{branch} reads 'outer' from the enclosing graph");
    }
    assert_eq!(kiln_ir::subgraph_reads(node), ["outer"]);
    // The If must run after the node that makes 'outer', although it has no edge to it.
    let order = m.graph.topo_order().expect("order");
    let pos = |op: &str| order.iter().position(|id| m.graph.nodes[id.0].op_type == op).expect("node in order");
    assert!(pos("Relu") < pos("If"));
}

/// With the reference kernels present, the If model also runs (skipped until they are).
#[test]
fn if_subgraph_runs_when_the_reference_has_the_ops() {
    let m = load_with("if_outer.onnx", &kiln_reference::op_set());
    let missing: Vec<String> = m.all_nodes().iter().filter(|n| n.unsupported.is_some()).map(|n| n.op_type.clone()).collect();
    if !missing.is_empty() {
        println!("not run: the reference executor lacks {missing:?}");
        return;
    }
    let x = Tensor::from_vec(vec![2], vec![-1.0f32, 2.0]).expect("x");
    for (c, want) in [(true, [0.0f32, 2.0]), (false, [-0.0, -2.0])] {
        let inputs = vec![("c".to_string(), kiln_reference::Value::Tensor(Tensor::scalar(c))), ("x".to_string(), kiln_reference::Value::Tensor(x.clone()))];
        let out = kiln_reference::run(&m, inputs).expect("runs");
        let y = out[0].1.as_tensor().expect("tensor");
        assert_eq!(y.as_slice::<f32>().expect("f32"), &want, "c = {c}");
    }
}

#[test]
fn metadata_is_kept() {
    let m = load("metadata.onnx");
    assert_eq!(m.metadata.get("author").map(String::as_str), Some("kiln"));
    assert_eq!(m.metadata.get("license").map(String::as_str), Some("Apache-2.0"));
    assert_eq!(m.metadata.get("empty").map(String::as_str), Some(""));
    assert_eq!(m.metadata.len(), 3);
    assert_eq!(m.doc_string, "a model with metadata");
    assert_eq!(m.model_version, 7);
    assert_eq!(m.domain, "org.kiln.test");
    assert_eq!(m.ir_version, 8);
    assert_eq!(m.opsets.get(""), Some(&17));
}

#[test]
fn unknown_ops_are_kept_and_all_reported() {
    let mut ops = OpSet::new("test set");
    ops.insert("", "Relu", 1, 21);
    let m = load_with("unknown_ops.onnx", &ops);
    assert_eq!(m.graph.nodes.len(), 3, "import continues past unknown ops");
    let by_name = |n: &str| m.graph.nodes.iter().find(|x| x.name == n).unwrap_or_else(|| panic!("node {n}"));
    assert_eq!(by_name("relu").unsupported, None);
    let fancy = by_name("fancy").unsupported.clone().expect("FancyOp is unsupported");
    assert!(fancy.contains("test set has no FancyOp op"), "{fancy}");
    let mystery = by_name("mystery").unsupported.clone().expect("Mystery is unsupported");
    assert!(mystery.contains("com.example::Mystery"), "{mystery}");
    assert_eq!(by_name("mystery").domain, "com.example");
    assert_eq!(by_name("mystery").opset, 1);
    let reported: Vec<&str> = m.all_nodes().iter().filter(|n| n.unsupported.is_some()).map(|n| n.op_type.as_str()).collect();
    assert_eq!(reported, ["FancyOp", "Mystery"]);
}

#[test]
fn op_outside_the_supported_opset_range_is_unsupported() {
    let mut ops = OpSet::new("old set");
    ops.insert("", "Relu", 1, 5);
    let m = load_with("unknown_ops.onnx", &ops);
    let relu = m.graph.nodes.iter().find(|n| n.name == "relu").expect("relu");
    let why = relu.unsupported.clone().expect("opset 17 is outside 1..=5");
    assert!(why.contains("old set supports Relu at opsets 1..=5, the model uses 17"), "{why}");
}

#[test]
fn small_model_imports_with_types_attrs_and_subgraphs() {
    let m = load("small.onnx");
    let g = &m.graph;
    assert_eq!(g.inputs.len(), 2);
    assert_eq!(g.runtime_inputs().len(), 2);
    let b = init(g, "B");
    assert_eq!(b.as_slice::<f32>().expect("f32"), &[0.1, 0.2, 0.3]);
    assert_eq!(init(g, "W").shape(), &[3, 4]);
    let s = init(g, "S");
    assert_eq!(s.as_slice::<f32>().expect("f32"), &[0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let gemm = g.nodes.iter().find(|n| n.op_type == "Gemm").expect("Gemm");
    assert_eq!(gemm.attr_float("alpha"), Some(0.5));
    assert_eq!(gemm.attr_int("transB"), Some(1));
    let k = g.nodes.iter().find(|n| n.op_type == "Constant").expect("Constant");
    assert!(matches!(k.attr("value"), Some(Attr::Tensor(t)) if t.shape() == [3]));
    // value_info: a symbolic dim and a known one.
    let gv = g.value(g.value_by_name("g").expect("g"));
    let shape = gv.shape.as_ref().expect("shape of g");
    assert_eq!(shape.0, vec![Dim::Sym("batch".into()), Dim::Known(3)]);
    assert_eq!(m.metadata.get("purpose").map(String::as_str), Some("mutation seed"));
    assert_eq!(m.all_nodes().len(), 8, "6 nodes and one in each branch");
}

/// dim_value -1 and dim_param "?" are read as unknown dimensions, each its own (paddle2onnx
/// writes both); other negative dims are refused (see malformed.rs).
#[test]
fn minus_one_dim_is_unknown() {
    let m = load("minus_one_dim.onnx");
    let x = m.graph.value(m.graph.inputs[0]);
    let shape = x.shape.as_ref().expect("shape");
    let [Dim::Sym(a), Dim::Known(3), Dim::Sym(b), Dim::Sym(c)] = shape.0.as_slice() else {
        panic!("x should be [?, 3, ?, ?], got {shape}")
    };
    assert!(a != b && b != c && a != c, "each unknown dim gets its own symbol: {shape}");
    // The reference executor binds them independently.
    let m = load_with("minus_one_dim.onnx", &kiln_reference::op_set());
    let x = Tensor::from_vec(vec![1, 3, 2, 5], vec![-1.0f32; 30]).expect("x");
    let out = kiln_reference::run(&m, vec![("x".to_string(), kiln_reference::Value::Tensor(x))]).expect("runs");
    assert_eq!(out[0].1.as_tensor().expect("tensor").shape(), &[1, 3, 2, 5]);
}

/// A model-local function with an attribute reference, called twice with different values.
#[test]
fn local_function_calls_expand_and_run() {
    let m = load_with("function.onnx", &kiln_reference::op_set());
    let ops: Vec<&str> = m.graph.nodes.iter().map(|n| n.op_type.as_str()).collect();
    assert!(!ops.contains(&"ScaledLeaky"), "calls are expanded inline: {ops:?}");
    let missing: Vec<String> = m.all_nodes().iter().filter(|n| n.unsupported.is_some()).map(|n| n.qualified_op()).collect();
    assert!(missing.is_empty(), "unsupported after expansion: {missing:?}");
    let x = Tensor::from_vec(vec![3], vec![-1.0f32, 0.5, 2.0]).expect("x");
    let out = kiln_reference::run(&m, vec![("x".to_string(), kiln_reference::Value::Tensor(x))]).expect("runs");
    let y = out[0].1.as_tensor().expect("tensor").as_slice::<f32>().expect("f32").to_vec();
    // call1: leaky(2x, 0.1) = [-0.2, 1, 4]; call2: leaky(2h, 0.2) = [-0.08, 2, 8].
    let want = [-0.08f32, 2.0, 8.0];
    assert!(y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{y:?}");
}
