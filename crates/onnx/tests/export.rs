//! ONNX export of graphs made in memory: a QDQ-quantized MatMul (what a quantization stage will
//! write) passes onnx.checker's full check and gives Kiln's reference outputs in onnxruntime;
//! the defaults and refusals of the exporter.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use kiln_ir::{Attr, Graph, Model, Node, ValueId};
use kiln_reference::Value;
use kiln_tensor::{DType, Dim, Shape, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn cache() -> PathBuf {
    std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"))
}

fn node(g: &mut Graph, op: &str, inputs: &[ValueId], out: &str, attrs: Vec<(&str, Attr)>) -> ValueId {
    let o = g.add_value(out, None, None);
    g.add_node(Node {
        name: format!("{op}_{out}"),
        op_type: op.into(),
        domain: String::new(),
        opset: 17,
        inputs: inputs.iter().map(|&v| Some(v)).collect(),
        outputs: vec![Some(o)],
        attrs: attrs.into_iter().map(|(k, a)| (k.to_string(), a)).collect(),
        unsupported: None,
    });
    o
}

fn init(g: &mut Graph, name: &str, t: Tensor) -> ValueId {
    let v = g.add_value(name, Some(t.dtype()), Some(Shape::known(t.shape())));
    g.initializers.insert(v, t);
    v
}

/// y = DQ(Q(x)) @ DQ(w_int8) + b: activations quantized to u8 per tensor, weights i8 per
/// column (axis 1).
fn qdq_model() -> Model {
    let mut g = Graph::new("qdq");
    let x = g.add_value("x", Some(DType::F32), Some(Shape(vec![Dim::Sym("batch".into()), Dim::Known(4)])));
    g.inputs.push(x);
    let xs = init(&mut g, "x_scale", Tensor::scalar(0.02f32));
    let xz = init(&mut g, "x_zero", Tensor::scalar(128u8));
    let w = init(&mut g, "w_q", Tensor::from_vec(vec![4, 3], vec![12i8, -7, 33, 0, 127, -128, 5, 9, -60, 44, 2, -1]).unwrap());
    let ws = init(&mut g, "w_scale", Tensor::from_vec(vec![3], vec![0.01f32, 0.02, 0.005]).unwrap());
    let wz = init(&mut g, "w_zero", Tensor::from_vec(vec![3], vec![0i8, 0, 0]).unwrap());
    let b = init(&mut g, "b", Tensor::from_vec(vec![3], vec![0.1f32, -0.2, 0.3]).unwrap());
    let q = node(&mut g, "QuantizeLinear", &[x, xs, xz], "xq", vec![]);
    let dq = node(&mut g, "DequantizeLinear", &[q, xs, xz], "xdq", vec![]);
    let wdq = node(&mut g, "DequantizeLinear", &[w, ws, wz], "wdq", vec![("axis", Attr::Int(1))]);
    let mm = node(&mut g, "MatMul", &[dq, wdq], "mm", vec![]);
    let y = node(&mut g, "Add", &[mm, b], "y", vec![]);
    let info = g.value_mut(y);
    info.dtype = Some(DType::F32);
    info.shape = Some(Shape(vec![Dim::Sym("batch".into()), Dim::Known(3)]));
    g.outputs.push(y);
    Model { graph: g, opsets: BTreeMap::from([(String::new(), 17)]), ..Model::default() }
}

#[test]
fn qdq_graph_exports_and_runs_in_onnxruntime() {
    let python = cache().join("venv/bin/python");
    assert!(python.is_file(), "{} missing (the venv with onnx and onnxruntime): run bash ci/test.sh", python.display());
    let model = qdq_model();
    kiln_ir::verify(&model).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("qdq.onnx");
    kiln_onnx::export(&model, &path, &kiln_onnx::ExportOptions::default()).unwrap();

    // Written with IR version 8 (the model had none); reads back as the same graph.
    let again = kiln_onnx::load(&path, &kiln_reference::op_set()).unwrap();
    assert_eq!(again.ir_version, 8);
    assert!(again.all_nodes().iter().all(|n| n.unsupported.is_none()));
    let mut want = model.clone();
    want.ir_version = 8;
    assert_eq!(kiln_ir::dump(&again), kiln_ir::dump(&want));

    let x = Tensor::from_vec(vec![2, 4], vec![0.5f32, -1.0, 2.0, 0.013, -2.6, 1.1, 0.0, 0.37]).unwrap();
    let feeds = tmp.path().join("feeds");
    std::fs::create_dir(&feeds).unwrap();
    std::fs::write(feeds.join("input_x.npy"), kiln_tensor::npy::write(&x).unwrap()).unwrap();
    let out = tmp.path().join("ort");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/onnx_check.py");
    let o = std::process::Command::new(&python).arg(&script).arg(&path).arg("--feeds").arg(&feeds).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    let theirs = kiln_tensor::npy::read(&std::fs::read(out.join("output_y.npy")).unwrap()).unwrap();
    let ours = kiln_reference::run(&model, vec![("x".into(), Value::Tensor(x))]).unwrap();
    let ours = ours[0].1.as_tensor().unwrap();
    let diff = ours.as_slice::<f32>().unwrap().iter().zip(theirs.as_slice::<f32>().unwrap()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("QDQ MatMul: max |onnxruntime - kiln reference| = {diff:.3e}");
    assert!(diff <= 1e-6, "{diff}");
}

#[test]
fn nodes_of_other_domains_get_an_opset_import() {
    let mut model = qdq_model();
    model.graph.nodes[3].domain = "kiln".into();
    model.graph.nodes[3].opset = 1;
    let mp = kiln_onnx::export::to_proto(&model).unwrap();
    let imports: Vec<(String, i64)> = mp.opset_import.iter().map(|o| (o.domain.clone(), o.version)).collect();
    assert_eq!(imports, [(String::new(), 17), ("kiln".to_string(), 1)]);
}

#[test]
fn an_untyped_main_output_is_refused_by_name() {
    let mut model = qdq_model();
    let y = model.graph.outputs[0];
    model.graph.value_mut(y).dtype = None;
    let e = kiln_onnx::export::to_bytes(&model).unwrap_err().to_string();
    assert!(e.contains("graph output 'y' has no known type"), "{e}");
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/folder/m.onnx");
    let e = kiln_onnx::export(&qdq_model(), &missing, &kiln_onnx::ExportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("m.onnx"), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
