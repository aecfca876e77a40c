use kiln_ir::{Graph, IrError, Model, Node, dump, verify};
use kiln_tensor::{DType, Dim, Shape, Tensor};

fn node(op: &str, name: &str, inputs: &[kiln_ir::ValueId], outputs: &[kiln_ir::ValueId]) -> Node {
    Node {
        name: name.into(),
        op_type: op.into(),
        opset: 17,
        inputs: inputs.iter().map(|&v| Some(v)).collect(),
        outputs: outputs.iter().map(|&v| Some(v)).collect(),
        ..Node::default()
    }
}

fn small_model() -> Model {
    let mut g = Graph::new("main");
    let sym = Shape(vec![Dim::Sym("batch".into()), Dim::Known(4)]);
    let x = g.add_value("x", Some(DType::F32), Some(sym.clone()));
    let w = g.add_value("w", Some(DType::F32), Some(Shape::known(&[4])));
    let y = g.add_value("y", Some(DType::F32), Some(sym.clone()));
    let z = g.add_value("z", Some(DType::F32), Some(sym));
    g.inputs.push(x);
    g.initializers.insert(w, Tensor::from_vec(vec![4], vec![1.0f32, 2.0, 3.0, 4.0]).expect("a 4-element tensor"));
    g.add_node(node("Add", "add0", &[x, w], &[y]));
    let mut relu = node("Relu", "relu0", &[y], &[z]);
    relu.attrs.insert("alpha".into(), kiln_ir::Attr::Float(0.5));
    g.add_node(relu);
    g.outputs.push(z);
    let mut m = Model { graph: g, ir_version: 8, ..Model::default() };
    m.opsets.insert(String::new(), 17);
    m
}

#[test]
fn dump_is_stable_and_readable() {
    let m = small_model();
    verify(&m).unwrap();
    insta::assert_snapshot!(dump(&m), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "main" {
      input %x: f32[batch,4]
      init %w = f32[4] [1, 2, 3, 4]
      %y: f32[batch,4] = Add(%x, %w)  # add0
      %z: f32[batch,4] = Relu(%y) {alpha=0.5}  # relu0
      output %z: f32[batch,4]
    }
    "#);
}

#[test]
fn dangling_input_names_node() {
    let mut m = small_model();
    let ghost = m.graph.add_value("ghost", None, None);
    m.graph.nodes[1].inputs.push(Some(ghost));
    let e = verify(&m).unwrap_err();
    assert_eq!(e, IrError::Dangling { node: "relu0".into(), op: "Relu".into(), value: "ghost".into() });
}

#[test]
fn cycle_is_found() {
    let mut m = small_model();
    // add0 now reads relu0's output, which reads add0's output.
    let z = m.graph.nodes[1].outputs[0];
    m.graph.nodes[0].inputs[0] = z;
    assert!(matches!(verify(&m), Err(IrError::Cycle { .. })), "{:?}", verify(&m));
}

#[test]
fn type_mismatch_names_node_and_values() {
    let mut m = small_model();
    let w = m.graph.nodes[0].inputs[1].unwrap();
    m.graph.value_mut(w).dtype = Some(DType::I64);
    let e = verify(&m).unwrap_err().to_string();
    assert!(e.contains("add0") && e.contains("'x' is f32") && e.contains("'w' is i64"), "{e}");
}

#[test]
fn redefinition_is_found() {
    let mut m = small_model();
    let y = m.graph.nodes[0].outputs[0];
    m.graph.nodes[1].outputs[0] = y;
    assert!(matches!(verify(&m), Err(IrError::Redefined { .. })));
}

#[test]
fn patch_replaces_a_node_and_keeps_output_names() {
    use kiln_ir::GraphPatch;
    let mut m = small_model();
    // Replace Relu(%y) -> %z by Sigmoid(%y) -> %s; the graph output keeps the name "z".
    let g = &m.graph;
    let y = g.nodes[1].inputs[0].unwrap();
    let z = g.outputs[0];
    let mut p = GraphPatch::new(g, "relu to sigmoid");
    let s = p.add_value("s", Some(DType::F32), None);
    p.remove_node(kiln_ir::NodeId(1));
    p.add_node(node("Sigmoid", "sig", &[y], &[s]));
    p.replace_uses(z, s);
    p.apply(&mut m.graph).unwrap();
    kiln_ir::compact(&mut m.graph);
    verify(&m).unwrap();
    insta::assert_snapshot!(dump(&m), @r#"
    model ir_version=8 opsets=[ai.onnx=17]
    graph "main" {
      input %x: f32[batch,4]
      init %w = f32[4] [1, 2, 3, 4]
      %y: f32[batch,4] = Add(%x, %w)  # add0
      %z: f32[?] = Sigmoid(%y)  # sig
      output %z: f32[?]
    }
    "#);
}
