//! Hand-built graphs that use only this family's ops (OptionalGetElement on a tensor acts as
//! Identity in bodies), run through the executor.

use crate::{Value, run};
use kiln_ir::{Attr, Graph, Model, Node, ValueId};
use kiln_tensor::{Data, Tensor};

struct Builder {
    g: Graph,
    opset: i64,
}

impl Builder {
    fn new(name: &str, opset: i64) -> Builder {
        Builder { g: Graph::new(name), opset }
    }
    fn v(&mut self, name: &str) -> ValueId {
        match self.g.value_by_name(name) {
            Some(id) => id,
            None => self.g.add_value(name, None, None),
        }
    }
    fn inputs(mut self, names: &[&str]) -> Builder {
        for n in names {
            let id = self.v(n);
            self.g.inputs.push(id);
        }
        self
    }
    fn outputs(mut self, names: &[&str]) -> Builder {
        for n in names {
            let id = self.v(n);
            self.g.outputs.push(id);
        }
        self
    }
    fn node(mut self, op: &str, ins: &[&str], outs: &[&str], attrs: Vec<(&str, Attr)>) -> Builder {
        let inputs = ins.iter().map(|n| if n.is_empty() { None } else { Some(self.v(n)) }).collect();
        let outputs = outs.iter().map(|n| Some(self.v(n))).collect();
        let attrs = attrs.into_iter().map(|(k, a)| (k.to_string(), a)).collect();
        self.g.nodes.push(Node { op_type: op.into(), opset: self.opset, inputs, outputs, attrs, ..Node::default() });
        self
    }
    /// An identity node (OptionalGetElement passes a tensor through from opset 18).
    fn id(self, from: &str, to: &str) -> Builder {
        self.node("OptionalGetElement", &[from], &[to], vec![])
    }
    fn graph(self) -> Attr {
        Attr::Graph(Box::new(self.g))
    }
    fn run(self, inputs: Vec<(&str, Value)>) -> Vec<Value> {
        let model = Model { graph: self.g, ..Model::default() };
        let named = inputs.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        match run(&model, named) {
            Ok(outs) => outs.into_iter().map(|(_, v)| v).collect(),
            Err(e) => panic!("run failed: {e}"),
        }
    }
}

fn f32s(shape: &[usize], v: &[f32]) -> Value {
    Value::Tensor(Tensor::from_vec(shape.to_vec(), v.to_vec()).expect("test tensor"))
}
fn i64s(shape: &[usize], v: &[i64]) -> Value {
    Value::Tensor(Tensor::from_vec(shape.to_vec(), v.to_vec()).expect("test tensor"))
}
fn flag(b: bool) -> Value {
    Value::Tensor(Tensor::scalar(b))
}
fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

#[test]
fn if_picks_a_branch_reading_outer_values() {
    let then_b = Builder::new("then", 18).id("a", "t_out").outputs(&["t_out"]).graph();
    let else_b = Builder::new("else", 18).node("SequenceConstruct", &["a", "b"], &["e_out"], vec![]).outputs(&["e_out"]).graph();
    let model = || {
        Builder::new("main", 18)
            .inputs(&["c", "a", "b"])
            .node("If", &["c"], &["y"], vec![("then_branch", then_b.clone()), ("else_branch", else_b.clone())])
            .outputs(&["y"])
    };
    let (a, b) = (f32s(&[2], &[1.0, 2.0]), f32s(&[1], &[3.0]));
    let y = model().run(vec![("c", flag(true)), ("a", a.clone()), ("b", b.clone())]);
    assert_eq!(y, vec![a.clone()]);
    let y = model().run(vec![("c", flag(false)), ("a", a.clone()), ("b", b.clone())]);
    let (Value::Tensor(ta), Value::Tensor(tb)) = (a, b) else { unreachable!() };
    assert_eq!(y, vec![Value::Sequence(vec![ta, tb])]);
}

#[test]
fn loop_carries_sequences_and_stacks_scan_outputs() {
    let body = Builder::new("body", 18)
        .inputs(&["i", "cond_in", "seq_in"])
        .id("cond_in", "cond_out")
        .node("SequenceInsert", &["seq_in", "x"], &["seq_out"], vec![])
        .id("i", "scan_out")
        .outputs(&["cond_out", "seq_out", "scan_out"])
        .graph();
    let out = Builder::new("main", 18)
        .inputs(&["m", "cond", "x"])
        .node("SequenceEmpty", &[], &["empty"], vec![])
        .node("Loop", &["m", "cond", "empty"], &["seq", "iters"], vec![("body", body)])
        .node("SequenceLength", &["seq"], &["len"], vec![])
        .outputs(&["len", "iters"])
        .run(vec![("m", i64s(&[], &[3])), ("cond", flag(true)), ("x", f32s(&[1], &[7.0]))]);
    assert_eq!(out, vec![i64s(&[], &[3]), i64s(&[3], &[0, 1, 2])]);
}

#[test]
fn loop_with_false_condition_runs_zero_times() {
    let mut body = Builder::new("body", 18).inputs(&["i", "c", "v"]).id("c", "c2").id("v", "v2").id("v", "s").outputs(&["c2", "v2", "s"]);
    let s = body.v("s");
    body.g.value_mut(s).dtype = Some(kiln_tensor::DType::F32);
    body.g.value_mut(s).shape = Some(kiln_tensor::Shape(vec![kiln_tensor::Dim::Known(2)]));
    let out = Builder::new("main", 18)
        .inputs(&["cond", "v"])
        .node("Loop", &["", "cond", "v"], &["v_final", "scan"], vec![("body", body.graph())])
        .outputs(&["v_final", "scan"])
        .run(vec![("cond", flag(false)), ("v", f32s(&[2], &[1.0, 2.0]))]);
    assert_eq!(out, vec![f32s(&[2], &[1.0, 2.0]), f32s(&[0, 2], &[])]);
}

/// A scan body whose new state is the current slice and whose scan output is the old state.
fn shift_body() -> Attr {
    Builder::new("body", 18).inputs(&["s_in", "x_t"]).id("x_t", "s_out").id("s_in", "y_t").outputs(&["s_out", "y_t"]).graph()
}

fn scan9(attrs: Vec<(&str, Attr)>, init: Value, x: Value) -> Vec<Value> {
    let mut attrs = attrs;
    attrs.push(("body", shift_body()));
    attrs.push(("num_scan_inputs", Attr::Int(1)));
    Builder::new("main", 18)
        .inputs(&["s", "x"])
        .node("Scan", &["s", "x"], &["s_final", "ys"], attrs)
        .outputs(&["s_final", "ys"])
        .run(vec![("s", init), ("x", x)])
}

#[test]
fn scan9_forward_reverse_and_axes() {
    let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let zero = f32s(&[2], &[0.0, 0.0]);
    let out = scan9(vec![], zero.clone(), x.clone());
    assert_eq!(out, vec![f32s(&[2], &[5.0, 6.0]), f32s(&[3, 2], &[0.0, 0.0, 1.0, 2.0, 3.0, 4.0])]);
    let out = scan9(vec![("scan_input_directions", ints(&[1]))], zero.clone(), x.clone());
    assert_eq!(out, vec![f32s(&[2], &[1.0, 2.0]), f32s(&[3, 2], &[0.0, 0.0, 5.0, 6.0, 3.0, 4.0])]);
    let out = scan9(vec![("scan_output_directions", ints(&[1]))], zero.clone(), x.clone());
    assert_eq!(out[1], f32s(&[3, 2], &[3.0, 4.0, 1.0, 2.0, 0.0, 0.0]));
    // Scanning the columns of a [2, 3] input and writing the outputs as columns.
    let xt = f32s(&[2, 3], &[1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    let out = scan9(vec![("scan_input_axes", ints(&[1])), ("scan_output_axes", ints(&[-1]))], zero, xt);
    assert_eq!(out, vec![f32s(&[2], &[5.0, 6.0]), f32s(&[2, 3], &[0.0, 1.0, 3.0, 0.0, 2.0, 4.0])]);
}

#[test]
fn scan8_batches_with_sequence_lengths() {
    let x = f32s(&[2, 3, 1], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let init = f32s(&[2, 1], &[0.0, 0.0]);
    let out = Builder::new("main", 8)
        .inputs(&["lens", "s", "x"])
        .node("Scan", &["lens", "s", "x"], &["s_final", "ys"], vec![("body", shift_body()), ("num_scan_inputs", Attr::Int(1))])
        .outputs(&["s_final", "ys"])
        .run(vec![("lens", i64s(&[2], &[3, 2])), ("s", init), ("x", x)]);
    assert_eq!(out, vec![f32s(&[2, 1], &[3.0, 5.0]), f32s(&[2, 3, 1], &[0.0, 1.0, 2.0, 0.0, 4.0, 0.0])]);
}

#[test]
fn sequence_map_mixes_sequences_and_tensors() {
    let body = Builder::new("body", 18).inputs(&["e", "t"]).id("e", "e2").id("t", "t2").outputs(&["e2", "t2"]).graph();
    let (a, b, t) = (f32s(&[1], &[1.0]), f32s(&[2], &[2.0, 3.0]), f32s(&[], &[9.0]));
    let out = Builder::new("main", 18)
        .inputs(&["a", "b", "t"])
        .node("SequenceConstruct", &["a", "b"], &["seq"], vec![])
        .node("SequenceMap", &["seq", "t"], &["m1", "m2"], vec![("body", body)])
        .outputs(&["m1", "m2"])
        .run(vec![("a", a.clone()), ("b", b.clone()), ("t", t.clone())]);
    let tensor = |v: Value| v.into_tensor().expect("a tensor");
    assert_eq!(out[0], Value::Sequence(vec![tensor(a), tensor(b)]));
    assert_eq!(out[1], Value::Sequence(vec![tensor(t.clone()), tensor(t)]));
}

#[test]
fn sequence_ops_insert_at_erase_split_concat() {
    let x = f32s(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let out = Builder::new("main", 18)
        .inputs(&["x", "p"])
        .node("SplitToSequence", &["x"], &["cols"], vec![("axis", Attr::Int(1)), ("keepdims", Attr::Int(0))])
        .node("SequenceErase", &["cols", "p"], &["two"], vec![])
        .node("SequenceAt", &["two", "p"], &["last"], vec![])
        .node("SequenceInsert", &["two", "last", "p"], &["three"], vec![])
        .node("ConcatFromSequence", &["three"], &["stacked"], vec![("axis", Attr::Int(1)), ("new_axis", Attr::Int(1))])
        .node("ConcatFromSequence", &["three"], &["joined"], vec![("axis", Attr::Int(0))])
        .outputs(&["stacked", "joined"])
        .run(vec![("x", x), ("p", i64s(&[], &[-1]))]);
    // cols = [0,3] [1,4] [2,5]; erase last -> [0,3] [1,4]; insert [1,4] before the last.
    assert_eq!(out[0], f32s(&[2, 3], &[0.0, 1.0, 1.0, 3.0, 4.0, 4.0]));
    assert_eq!(out[1], f32s(&[6], &[0.0, 3.0, 1.0, 4.0, 1.0, 4.0]));
}

#[test]
fn optionals_wrap_and_unwrap() {
    let x = f32s(&[1], &[4.0]);
    let out = Builder::new("main", 18)
        .inputs(&["x"])
        .node("Optional", &["x"], &["o"], vec![])
        .node("Optional", &[], &["none"], vec![("type", Attr::Type(None))])
        .node("OptionalHasElement", &["o"], &["h1"], vec![])
        .node("OptionalHasElement", &["none"], &["h2"], vec![])
        .node("OptionalHasElement", &[""], &["h3"], vec![])
        .node("OptionalGetElement", &["o"], &["back"], vec![])
        .outputs(&["h1", "h2", "h3", "back"])
        .run(vec![("x", x.clone())]);
    assert_eq!(out, vec![flag(true), flag(false), flag(false), x]);
}

#[test]
fn strings_split_and_normalize() {
    let s = |shape: &[usize], v: &[&str]| {
        Value::Tensor(Tensor::new(shape.to_vec(), Data::String(v.iter().map(|x| x.to_string()).collect())).expect("test tensor"))
    };
    let out = Builder::new("main", 20)
        .inputs(&["x"])
        .node("StringSplit", &["x"], &["parts", "n"], vec![("maxsplit", Attr::Int(1))])
        .node(
            "StringNormalizer",
            &["x"],
            &["norm"],
            vec![("case_change_action", Attr::String(b"UPPER".to_vec())), ("stopwords", Attr::Strings(vec![b"B C".to_vec()]))],
        )
        .outputs(&["parts", "n", "norm"])
        .run(vec![("x", s(&[2], &["  a  b c ", "b c"]))]);
    assert_eq!(out, vec![s(&[2, 2], &["a", "b c", "b", "c"]), i64s(&[2], &[2, 2]), s(&[1], &["  A  B C "])]);
}

#[test]
fn tfidf_string_pool_with_weights() {
    let s = |v: &[&str]| {
        Value::Tensor(Tensor::new(vec![v.len()], Data::String(v.iter().map(|x| x.to_string()).collect())).expect("test tensor"))
    };
    let pool = |v: &[&str]| Attr::Strings(v.iter().map(|x| x.as_bytes().to_vec()).collect());
    let out = Builder::new("main", 18)
        .inputs(&["x"])
        .node(
            "TfIdfVectorizer",
            &["x"],
            &["y"],
            vec![
                ("min_gram_length", Attr::Int(1)),
                ("max_gram_length", Attr::Int(2)),
                ("max_skip_count", Attr::Int(1)),
                ("mode", Attr::String(b"TFIDF".to_vec())),
                ("ngram_counts", ints(&[0, 2])),
                ("ngram_indexes", ints(&[2, 0, 1])),
                ("pool_strings", pool(&["a", "b", "a", "b"])),
                ("weights", Attr::Floats(vec![0.5, 2.0, 10.0])),
            ],
        )
        .outputs(&["y"])
        .run(vec![("x", s(&["a", "c", "b", "a", "b"]))]);
    // "a" twice (coordinate 2), "b" twice (0), "a b" once adjacent and once with a gap (1).
    assert_eq!(out, vec![f32s(&[3], &[1.0, 4.0, 20.0])]);
}

#[test]
fn dft_inverse_undoes_forward() {
    let x = f32s(&[1, 4, 1], &[1.0, -2.0, 3.0, 0.5]);
    let out = Builder::new("main", 20)
        .inputs(&["x"])
        .node("DFT", &["x"], &["f"], vec![])
        .node("DFT", &["f"], &["back"], vec![("inverse", Attr::Int(1))])
        .outputs(&["f", "back"])
        .run(vec![("x", x)]);
    let get = |v: &Value| v.as_tensor().and_then(|t| t.to_f64_vec().ok()).unwrap_or_default();
    let f = get(&out[0]);
    // Bin 0 is the sum; bin 2 the alternating sum.
    assert!((f[0] - 2.5).abs() < 1e-6 && f[1].abs() < 1e-6 && (f[4] - 5.5).abs() < 1e-6);
    let back = get(&out[1]);
    let want = [1.0, 0.0, -2.0, 0.0, 3.0, 0.0, 0.5, 0.0];
    assert!(back.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-5), "{back:?}");
}

#[test]
fn onesided_inverse_dft_is_the_inverse_real_transform() {
    // Forward one-sided transform of a real signal of length 4 (3 bins), then inverse with
    // onesided: the real signal comes back, [1, 4, 1] (length 2 * (3 - 1)).
    let x = f32s(&[1, 4, 1], &[1.0, -2.0, 3.0, 0.5]);
    let out = Builder::new("main", 20)
        .inputs(&["x"])
        .node("DFT", &["x"], &["f"], vec![("onesided", Attr::Int(1))])
        .node("DFT", &["f"], &["back"], vec![("inverse", Attr::Int(1)), ("onesided", Attr::Int(1))])
        .outputs(&["back"])
        .run(vec![("x", x)]);
    let Some(back) = out[0].as_tensor() else { panic!("tensor expected") };
    assert_eq!(back.shape(), &[1, 4, 1]);
    let got = back.to_f64_vec().unwrap_or_default();
    assert!(got.iter().zip([1.0, -2.0, 3.0, 0.5]).all(|(a, b)| (a - b).abs() < 1e-5), "{got:?}");
}
