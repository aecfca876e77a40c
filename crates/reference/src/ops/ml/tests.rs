//! Unit tests of the ai.onnx.ml kernels on hand-made models (the ONNX node cases do not cover
//! these ops); expected values worked out by hand, two-class rules as onnxruntime's.

use crate::{Kernel, Map, OpCtx, OpError, Value, registry};
use kiln_ir::{Attr, Graph, Node};
use kiln_tensor::{Data, Tensor};

fn run_value(op: &str, attrs: &[(&str, Attr)], inputs: &[&Value]) -> Result<Vec<Value>, OpError> {
    let node = Node {
        op_type: op.into(),
        domain: "ai.onnx.ml".into(),
        opset: 1,
        attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        ..Node::default()
    };
    let sub = |_: &Graph, _: Vec<Value>| -> Result<Vec<Value>, crate::ExecError> { Ok(vec![]) };
    let ctx = OpCtx { node: &node, subgraph: &sub };
    match registry().lookup("ai.onnx.ml", op, 1) {
        Some(Kernel::Tensor(f)) => {
            let ts: Vec<Option<&Tensor>> = inputs.iter().map(|v| v.as_tensor()).collect();
            Ok(f(&ctx, &ts)?.into_iter().map(Value::Tensor).collect())
        }
        Some(Kernel::Value(f)) => f(&ctx, &inputs.iter().map(|v| Some(*v)).collect::<Vec<_>>()),
        None => Err(OpError::Unsupported(op.into())),
    }
}

fn run(op: &str, attrs: &[(&str, Attr)], inputs: &[&Tensor]) -> Result<Vec<Tensor>, OpError> {
    let vals: Vec<Value> = inputs.iter().map(|t| Value::Tensor((*t).clone())).collect();
    let outs = run_value(op, attrs, &vals.iter().collect::<Vec<_>>())?;
    Ok(outs.into_iter().filter_map(Value::into_tensor).collect())
}

fn ok(op: &str, attrs: &[(&str, Attr)], inputs: &[&Tensor]) -> Vec<Tensor> {
    run(op, attrs, inputs).unwrap_or_else(|e| panic!("{op}: {e}"))
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap_or_else(|e| panic!("{e}"))
}
fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap_or_else(|e| panic!("{e}"))
}
fn strs(shape: &[usize], v: &[&str]) -> Tensor {
    Tensor::new(shape.to_vec(), Data::String(v.iter().map(|s| s.to_string()).collect())).unwrap_or_else(|e| panic!("{e}"))
}
fn floats(v: &[f32]) -> Attr {
    Attr::Floats(v.to_vec())
}
fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}
fn s(v: &str) -> Attr {
    Attr::String(v.as_bytes().to_vec())
}
fn strings(v: &[&str]) -> Attr {
    Attr::Strings(v.iter().map(|s| s.as_bytes().to_vec()).collect())
}

fn close(got: &Tensor, want: &[f32]) {
    let g = got.to_f64_vec().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.len(), want.len(), "{g:?} vs {want:?}");
    for (a, b) in g.iter().zip(want) {
        assert!((a - f64::from(*b)).abs() < 1e-5, "{g:?} vs {want:?}");
    }
}

#[test]
fn linear_classifier_multiclass_and_binary() {
    let x = f32s(&[2, 2], &[1.0, 2.0, -1.0, 0.0]);
    // Three classes: scores = x·W + b, best label.
    let attrs = [
        ("coefficients", floats(&[1.0, 0.0, 0.0, 1.0, -1.0, -1.0])),
        ("intercepts", floats(&[0.0, 0.0, 0.5])),
        ("classlabels_strings", strings(&["a", "b", "c"])),
    ];
    let out = ok("LinearClassifier", &attrs, &[&x]);
    assert_eq!(out[0], strs(&[2], &["b", "c"]));
    close(&out[1], &[1.0, 2.0, -2.5, -1.0, 0.0, 1.5]);
    // One score row and two labels: label by sign, scores widen to [1 - s, s].
    let attrs = [("coefficients", floats(&[1.0, 1.0])), ("intercepts", floats(&[-1.0])), ("classlabels_ints", ints(&[3, 7]))];
    let out = ok("LinearClassifier", &attrs, &[&x]);
    assert_eq!(out[0], i64s(&[2], &[7, 3]));
    close(&out[1], &[-1.0, 2.0, 3.0, -2.0]);
    // Wrong coefficient count: an error, not a panic.
    assert!(run("LinearClassifier", &[("coefficients", floats(&[1.0; 3])), ("intercepts", floats(&[0.0]))], &[&x]).is_err());
}

#[test]
fn linear_regressor_and_post_transforms() {
    let x = f32s(&[1, 2], &[1.0, 2.0]);
    let out = ok("LinearRegressor", &[("coefficients", floats(&[1.0, 1.0, 2.0, -1.0])), ("intercepts", floats(&[0.0, 1.0])), ("targets", Attr::Int(2))], &[&x]);
    close(&out[0], &[3.0, 1.0]);
    let out = ok(
        "LinearRegressor",
        &[("coefficients", floats(&[1.0, 1.0, 1.0, 1.0])), ("targets", Attr::Int(2)), ("post_transform", s("SOFTMAX"))],
        &[&x],
    );
    close(&out[0], &[0.5, 0.5]);
    // A single target takes only PROBIT: LOGISTIC leaves it alone (as onnxruntime does).
    let out = ok("LinearRegressor", &[("coefficients", floats(&[1.0, 1.0])), ("post_transform", s("LOGISTIC"))], &[&x]);
    close(&out[0], &[3.0]);
}

#[test]
fn scaler_normalizer_imputer() {
    let x = f32s(&[2, 2], &[1.0, 4.0, -3.0, 0.0]);
    close(&ok("Scaler", &[("offset", floats(&[1.0, 2.0])), ("scale", floats(&[2.0]))], &[&x])[0], &[0.0, 4.0, -8.0, -4.0]);
    assert!(run("Scaler", &[("offset", floats(&[1.0, 2.0, 3.0]))], &[&x]).is_err());
    close(&ok("Normalizer", &[("norm", s("L1"))], &[&x])[0], &[0.2, 0.8, -1.0, 0.0]);
    close(&ok("Normalizer", &[("norm", s("MAX"))], &[&x])[0], &[0.25, 1.0, -3.0, 0.0]);
    let zero = f32s(&[1, 2], &[0.0, 0.0]);
    close(&ok("Normalizer", &[("norm", s("L2"))], &[&zero])[0], &[0.0, 0.0]);
    let x = f32s(&[2, 2], &[f32::NAN, 1.0, 2.0, f32::NAN]);
    let out = ok("Imputer", &[("imputed_value_floats", floats(&[9.0, 8.0])), ("replaced_value_float", Attr::Float(f32::NAN))], &[&x]);
    close(&out[0], &[9.0, 1.0, 2.0, 8.0]);
    let x = i64s(&[3], &[0, 5, 0]);
    assert_eq!(ok("Imputer", &[("imputed_value_int64s", ints(&[-1]))], &[&x])[0], i64s(&[3], &[-1, 5, -1]));
}

#[test]
fn encoders() {
    let x = strs(&[1, 3], &["b", "z", "a"]);
    let out = ok("OneHotEncoder", &[("cats_strings", strings(&["a", "b"]))], &[&x]);
    assert_eq!(out[0].shape(), &[1, 3, 2]);
    close(&out[0], &[0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
    assert!(run("OneHotEncoder", &[("cats_strings", strings(&["a", "b"])), ("zeros", Attr::Int(0))], &[&x]).is_err());
    let n = f32s(&[2], &[3.0, 1.0]);
    close(&ok("OneHotEncoder", &[("cats_int64s", ints(&[1, 3]))], &[&n])[0], &[0.0, 1.0, 1.0, 0.0]);

    let cm = [("cats_strings", strings(&["x", "y"])), ("cats_int64s", ints(&[10, 20])), ("default_string", s("?"))];
    assert_eq!(ok("CategoryMapper", &cm, &[&strs(&[2], &["y", "q"])])[0], i64s(&[2], &[20, -1]));
    assert_eq!(ok("CategoryMapper", &cm, &[&i64s(&[2], &[10, 5])])[0], strs(&[2], &["x", "?"]));

    let a = f32s(&[2, 1], &[1.0, 2.0]);
    let b = i64s(&[2, 3], &[3, 4, 5, 6, 7, 8]);
    let out = ok("FeatureVectorizer", &[("inputdimensions", ints(&[2, 2]))], &[&a, &b]);
    assert_eq!(out[0].shape(), &[2, 4]);
    close(&out[0], &[1.0, 0.0, 3.0, 4.0, 2.0, 0.0, 6.0, 7.0]);
}

#[test]
fn svm_regressor_and_classifier() {
    let x = f32s(&[2, 2], &[1.0, 0.0, 0.0, 2.0]);
    // Linear (no support vectors): x·coef + rho.
    close(&ok("SVMRegressor", &[("coefficients", floats(&[2.0, 1.0])), ("rho", floats(&[0.5]))], &[&x])[0], &[2.5, 2.5]);
    // RBF with one support vector at the origin, gamma 1: exp(-|x|²).
    let attrs = [
        ("coefficients", floats(&[2.0])),
        ("rho", floats(&[0.0])),
        ("n_supports", Attr::Int(1)),
        ("support_vectors", floats(&[0.0, 0.0])),
        ("kernel_type", s("RBF")),
        ("kernel_params", floats(&[1.0, 0.0, 0.0])),
    ];
    close(&ok("SVMRegressor", &attrs, &[&x])[0], &[2.0 * (-1f32).exp(), 2.0 * (-4f32).exp()]);

    // One-vs-one, three classes, one linear support vector each.
    let attrs = [
        ("classlabels_ints", ints(&[0, 1, 2])),
        ("vectors_per_class", ints(&[1, 1, 1])),
        ("support_vectors", floats(&[1.0, 0.0, 0.0, 1.0, -1.0, -1.0])),
        // coefficients [classes - 1, vectors]
        ("coefficients", floats(&[1.0, 1.0, 1.0, -1.0, -1.0, -1.0])),
        ("rho", floats(&[0.0, 0.0, 0.0])),
    ];
    let out = ok("SVMClassifier", &attrs, &[&x]);
    // Row 0 kernels [1, 0, -1]: d01 = 1*1 + 1*0 = 1 (0 wins), d02 = -1*1 + 1*(-1) = -2 (2 wins),
    // d12 = -1*0 + -1*(-1) = 1 (1 wins): a three-way tie goes to the first class, 0.
    // Row 1 kernels [0, 2, -2]: d01 = 2, d02 = -2, d12 = -2 + 2 = 0 (not > 0: 2 wins): class 2.
    assert_eq!(out[0], i64s(&[2], &[0, 2]));
    assert_eq!(out[1].shape(), &[2, 3]);
    close(&out[1], &[1.0, -2.0, 1.0, 2.0, -2.0, 0.0]);
    // A class count that disagrees with vectors_per_class is an error.
    let mut bad = attrs.to_vec();
    bad[1] = ("vectors_per_class", ints(&[1, 2]));
    assert!(run("SVMClassifier", &bad, &[&x]).is_err());
}

/// Two trees over feature 0: tree 0 splits at 0.5, tree 1 is a single leaf.
fn forest(prefix: &str, ids: &[i64], weights: &[f32]) -> Vec<(String, Attr)> {
    let p = |n: &str| format!("{prefix}_{n}");
    vec![
        ("nodes_treeids".into(), ints(&[0, 0, 0, 1])),
        ("nodes_nodeids".into(), ints(&[0, 1, 2, 0])),
        ("nodes_featureids".into(), ints(&[0, 0, 0, 0])),
        ("nodes_modes".into(), strings(&["BRANCH_LEQ", "LEAF", "LEAF", "LEAF"])),
        ("nodes_values".into(), floats(&[0.5, 0.0, 0.0, 0.0])),
        ("nodes_truenodeids".into(), ints(&[1, 0, 0, 0])),
        ("nodes_falsenodeids".into(), ints(&[2, 0, 0, 0])),
        (p("treeids"), ints(&[0, 0, 1][..ids.len().min(3)])),
        (p("nodeids"), ints(&[1, 2, 0][..ids.len().min(3)])),
        (p("ids"), ints(ids)),
        (p("weights"), floats(weights)),
    ]
}

fn with(mut a: Vec<(String, Attr)>, more: &[(&str, Attr)]) -> Vec<(String, Attr)> {
    a.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
    a
}

fn attrs(a: &[(String, Attr)]) -> Vec<(&str, Attr)> {
    a.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
}

#[test]
fn tree_ensemble_regressor_aggregates() {
    let x = f32s(&[2, 1], &[0.0, 1.0]);
    let f = forest("target", &[0, 0, 0], &[1.0, 2.0, 10.0]);
    close(&ok("TreeEnsembleRegressor", &attrs(&with(f.clone(), &[("base_values", floats(&[0.5]))])), &[&x])[0], &[11.5, 12.5]);
    close(&ok("TreeEnsembleRegressor", &attrs(&with(f.clone(), &[("aggregate_function", s("AVERAGE"))])), &[&x])[0], &[5.5, 6.0]);
    close(&ok("TreeEnsembleRegressor", &attrs(&with(f.clone(), &[("aggregate_function", s("MIN"))])), &[&x])[0], &[1.0, 2.0]);
    // A NaN goes to the false child unless its node tracks missing values as true.
    let nan = f32s(&[1, 1], &[f32::NAN]);
    close(&ok("TreeEnsembleRegressor", &attrs(&f), &[&nan])[0], &[12.0]);
    let tracked = with(f.clone(), &[("nodes_missing_value_tracks_true", ints(&[1, 0, 0, 0]))]);
    close(&ok("TreeEnsembleRegressor", &attrs(&tracked), &[&nan])[0], &[11.0]);
    // A link to a node that does not exist is an error.
    let mut bad = f;
    bad[5] = ("nodes_truenodeids".into(), ints(&[7, 0, 0, 0]));
    assert!(run("TreeEnsembleRegressor", &attrs(&bad), &[&x]).is_err());
}

#[test]
fn tree_ensemble_classifier_multiclass_and_binary() {
    let x = f32s(&[2, 1], &[0.0, 1.0]);
    // Three classes: leaf (0,1) votes class 0, (0,2) class 1, tree 1 class 2 (weight 0.25).
    let f = with(forest("class", &[0, 1, 2], &[1.0, 1.0, 0.25]), &[("classlabels_int64s", ints(&[5, 6, 7]))]);
    let out = ok("TreeEnsembleClassifier", &attrs(&f), &[&x]);
    assert_eq!(out[0], i64s(&[2], &[5, 6]));
    close(&out[1], &[1.0, 0.0, 0.25, 0.0, 1.0, 0.25]);
    // Two classes, every leaf weighting class 0 (the "binary case"), positive weights: label
    // 1 when the score passes 0.5, scores [1 - p, p].
    let f = with(forest("class", &[0, 0, 0], &[0.1, 0.4, 0.2]), &[("classlabels_int64s", ints(&[0, 1]))]);
    let out = ok("TreeEnsembleClassifier", &attrs(&f), &[&x]);
    assert_eq!(out[0], i64s(&[2], &[0, 1]));
    close(&out[1], &[0.7, 0.3, 0.4, 0.6]);
    // The same weights on class 1: both classes are written, class 0 unscored (0).
    let f = with(forest("class", &[1, 1, 1], &[0.1, 0.4, 0.2]), &[("classlabels_int64s", ints(&[0, 1]))]);
    close(&ok("TreeEnsembleClassifier", &attrs(&f), &[&x])[1], &[0.0, 0.3, 0.0, 0.6]);
    // Weights on both classes (not the "binary case"): the label follows the sign of class 1's
    // score, the raw 1 / 0 for int labels, the label at that index for strings.
    let both = forest("class", &[0, 1, 1], &[0.5, -0.25, 0.25]);
    let ints_out = ok("TreeEnsembleClassifier", &attrs(&with(both.clone(), &[("classlabels_int64s", ints(&[4, 9]))])), &[&x]);
    assert_eq!(ints_out[0], i64s(&[2], &[1, 0]));
    let strs_out = ok("TreeEnsembleClassifier", &attrs(&with(both, &[("classlabels_strings", strings(&["no", "yes"]))])), &[&x]);
    assert_eq!(strs_out[0], strs(&[2], &["yes", "no"]));
    // f32 sums, as onnxruntime: 0.3 + 0.1 + 0.1 is 0.5 exactly in f32 (0.5000000149 from the
    // same f32 weights in f64), so "p > 0.5" is false and the label is class 0.
    let f = with(forest("class", &[0, 0, 0], &[0.3, 0.6, 0.1]), &[("classlabels_int64s", ints(&[4, 9])), ("base_values", floats(&[0.1]))]);
    assert_eq!(ok("TreeEnsembleClassifier", &attrs(&f), &[&x])[0], i64s(&[2], &[4, 9]));
    // Gradient-boosting style: one base value, LOGISTIC, mixed-sign weights on class 0.
    let f = with(
        forest("class", &[0, 0, 0], &[-1.0, 1.0, 0.5]),
        &[("classlabels_int64s", ints(&[0, 1])), ("base_values", floats(&[0.25])), ("post_transform", s("LOGISTIC"))],
    );
    let out = ok("TreeEnsembleClassifier", &attrs(&f), &[&x]);
    assert_eq!(out[0], i64s(&[2], &[0, 1]));
    let lg = |v: f32| 1.0 / (1.0 + (-v).exp());
    close(&out[1], &[lg(0.25), lg(-0.25), lg(-1.75), lg(1.75)]);
}

#[test]
fn zipmap_makes_one_map_per_row() {
    let x = Value::Tensor(f32s(&[2, 2], &[0.25, 0.75, 1.0, 0.0]));
    let out = run_value("ZipMap", &[("classlabels_strings", strings(&["no", "yes"]))], &[&x]).unwrap_or_else(|e| panic!("{e}"));
    let keys = strs(&[2], &["no", "yes"]);
    let want = vec![Map { keys: keys.clone(), values: f32s(&[2], &[0.25, 0.75]) }, Map { keys, values: f32s(&[2], &[1.0, 0.0]) }];
    assert_eq!(out, vec![Value::Maps(want)]);
    assert!(run_value("ZipMap", &[("classlabels_int64s", ints(&[1, 2, 3]))], &[&x]).is_err());
}

#[test]
fn absurd_output_sizes_are_errors_not_allocations() {
    let x = f32s(&[1, 0], &[]);
    assert!(run("LinearRegressor", &[("coefficients", floats(&[])), ("targets", Attr::Int(1 << 40))], &[&x]).is_err());
    assert!(run("FeatureVectorizer", &[("inputdimensions", ints(&[1 << 40]))], &[&f32s(&[1, 1], &[1.0])]).is_err());
    let f = with(forest("target", &[0, 0, 0], &[1.0, 2.0, 3.0]), &[("n_targets", Attr::Int(1 << 40))]);
    assert!(run("TreeEnsembleRegressor", &attrs(&f), &[&f32s(&[1, 1], &[0.0])]).is_err());
}
