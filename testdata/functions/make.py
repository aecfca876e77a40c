#!/usr/bin/env python3
"""Writes the fixtures of crates/onnx/tests/functions.rs (small, committed) next to this script:
models that call model-local functions (ModelProto.functions, IR 8+).

    python3 testdata/functions/make.py        # needs onnx==1.16.2 and numpy

For each valid model `<case>.onnx` there are data sets `<case>/set_<k>/input_<i>.pb` and
`output_<i>.pb` (TensorProtos named after the graph's inputs and outputs), like the ONNX backend
tests. Expected outputs are computed here with numpy. When onnxruntime is importable (e.g.
testdata/cache/venv/bin/python), each model is also run through it and must agree.
Output is deterministic: rerunning the script rewrites the same bytes.
"""
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
F = TensorProto.FLOAT
B = TensorProto.BOOL
LOCAL = "local"


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def ref(name, ref_name, kind):
    """An attribute `name` of a function body node that refers to the function's `ref_name`."""
    a = onnx.AttributeProto()
    a.name = name
    a.ref_attr_name = ref_name
    a.type = kind
    return a


def node_with(op, inputs, outputs, attrs=(), name="", domain=""):
    n = helper.make_node(op, inputs, outputs, name=name, domain=domain)
    n.attribute.extend(attrs)
    return n


def model(nodes, inputs, outputs, functions, initializers=(), opset=18):
    g = helper.make_graph(nodes, "main", inputs, outputs, initializer=list(initializers))
    return helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(LOCAL, 1)],
        ir_version=10,
        functions=functions,
        producer_name="kiln testdata/functions/make.py",
    )


def save(m, case, sets):
    """Writes `<case>.onnx` and its data sets: a list of (inputs, outputs) dicts name -> array."""
    with open(os.path.join(HERE, case + ".onnx"), "wb") as f:
        f.write(m.SerializeToString())
    folder = os.path.join(HERE, case)
    shutil.rmtree(folder, ignore_errors=True)
    for k, (ins, outs) in enumerate(sets):
        d = os.path.join(folder, f"set_{k}")
        os.makedirs(d)
        for kind, tensors in (("input", ins), ("output", outs)):
            for i, (name, arr) in enumerate(tensors.items()):
                with open(os.path.join(d, f"{kind}_{i}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(arr, name).SerializeToString())
    check_with_onnxruntime(m, sets, case)


def check_with_onnxruntime(m, sets, case):
    try:
        import onnxruntime as ort
    except ImportError:
        print(f"{case}: onnxruntime not importable, expected values from numpy only")
        return
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    for ins, outs in sets:
        got = s.run(list(outs), ins)
        for (name, want), g in zip(outs.items(), got):
            np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-6, err_msg=f"{case}: {name}")
    print(f"{case}: onnxruntime {ort.__version__} agrees")


def leaky(x, alpha):
    return np.where(x >= 0, x, alpha * x).astype(np.float32)


# (1) LinearRelu(X, W, B){alpha} = LeakyRelu(X @ W + B, alpha); alpha defaults to 0.01
#     (attribute_proto, IR 9). Called twice: once named with alpha=0.2, once unnamed with the default.
def linear_relu():
    fn = helper.make_function(
        LOCAL, "LinearRelu", ["X", "W", "B"], ["Y"],
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"], name="mm"),
            helper.make_node("Add", ["XW", "B"], ["Z"], name="bias"),
            node_with("LeakyRelu", ["Z"], ["Y"], [ref("alpha", "alpha", onnx.AttributeProto.FLOAT)], name="act"),
        ],
        opset_imports=[helper.make_opsetid("", 18)],
        attribute_protos=[helper.make_attribute("alpha", 0.01)],
    )
    w1 = np.array([[1, -2, 0.5, 0], [0.25, 1, -1, 2], [-0.5, 0, 1, -1]], np.float32)
    b1 = np.array([0.1, -0.2, 0.3, -0.4], np.float32)
    w2 = np.array([[1, -1], [0.5, 2], [-2, 0.25], [1, 1]], np.float32)
    b2 = np.array([-0.5, 0.5], np.float32)
    nodes = [
        helper.make_node("LinearRelu", ["X", "W1", "B1"], ["H"], name="layer1", domain=LOCAL, alpha=0.2),
        helper.make_node("LinearRelu", ["H", "W2", "B2"], ["Y"], domain=LOCAL),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in (("W1", w1), ("B1", b1), ("W2", w2), ("B2", b2))]
    m = model(nodes, [vi("X", [2, 3])], [vi("Y", [2, 2])], [fn], inits)
    x = np.array([[1, 2, -3], [-1, 0.5, 4]], np.float32)
    h = leaky(x @ w1 + b1, 0.2)
    y = leaky(h @ w2 + b2, 0.01)
    save(m, "linear_relu", [({"X": x}, {"Y": y})])


# (2) Outer(X, Y){gain} calls Inner(A, B){alpha} = LeakyRelu(A - B, alpha) twice: once passing its
#     own attribute on (a reference to a reference), once with a literal. Outer reads ai.onnx at
#     opset 17 while the model imports 18.
def nested():
    inner = helper.make_function(
        LOCAL, "Inner", ["A", "B"], ["C"],
        [
            helper.make_node("Sub", ["A", "B"], ["D"]),
            node_with("LeakyRelu", ["D"], ["C"], [ref("alpha", "alpha", onnx.AttributeProto.FLOAT)]),
        ],
        opset_imports=[helper.make_opsetid("", 18)],
        attributes=["alpha"],
    )
    outer = helper.make_function(
        LOCAL, "Outer", ["X", "Y"], ["Z"],
        [
            node_with("Inner", ["X", "Y"], ["T"], [ref("alpha", "gain", onnx.AttributeProto.FLOAT)], name="first", domain=LOCAL),
            helper.make_node("Inner", ["T", "X"], ["U"], name="second", domain=LOCAL, alpha=0.5),
            helper.make_node("Mul", ["U", "U"], ["Z"], name="square"),
        ],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(LOCAL, 1)],
        attributes=["gain"],
    )
    nodes = [helper.make_node("Outer", ["X", "Y"], ["Z"], name="outer", domain=LOCAL, gain=0.1)]
    m = model(nodes, [vi("X", [4]), vi("Y", [4])], [vi("Z", [4])], [inner, outer])
    x = np.array([1, -2, 3, 0.5], np.float32)
    y = np.array([2, 1, -1, 0.5], np.float32)
    t = leaky(x - y, 0.1)
    u = leaky(t - x, 0.5)
    save(m, "nested", [({"X": x, "Y": y}, {"Z": (u * u).astype(np.float32)})])


# (3) ClipBoth(X, lo, hi) -> (Y = Clip(X, lo, hi), N = Neg(X)), called with hi left off (fewer
#     inputs), with lo left off (empty name), and without asking for N.
def optional_input():
    fn = helper.make_function(
        LOCAL, "ClipBoth", ["X", "lo", "hi"], ["Y", "N"],
        [helper.make_node("Clip", ["X", "lo", "hi"], ["Y"]), helper.make_node("Neg", ["X"], ["N"])],
        opset_imports=[helper.make_opsetid("", 18)],
    )
    nodes = [
        helper.make_node("ClipBoth", ["X", "L"], ["Y1", ""], name="low_only", domain=LOCAL),
        helper.make_node("ClipBoth", ["X", "", "H"], ["Y2", ""], name="high_only", domain=LOCAL),
    ]
    m = model(nodes, [vi("X", [5]), vi("L", []), vi("H", [])], [vi("Y1", [5]), vi("Y2", [5])], [fn])
    x = np.array([-3, -1, 0, 2, 5], np.float32)
    lo, hi = np.array(-1.5, np.float32), np.array(1.0, np.float32)
    save(m, "optional_input", [({"X": x, "L": lo, "H": hi}, {"Y1": np.maximum(x, lo), "Y2": np.minimum(x, hi)})])


# (4) F calls G calls F: must be refused.
def recursive():
    f = helper.make_function(LOCAL, "F", ["X"], ["Y"], [helper.make_node("G", ["X"], ["Y"], domain=LOCAL)],
                             opset_imports=[helper.make_opsetid(LOCAL, 1)])
    g = helper.make_function(LOCAL, "G", ["X"], ["Y"], [helper.make_node("F", ["X"], ["Y"], domain=LOCAL)],
                             opset_imports=[helper.make_opsetid(LOCAL, 1)])
    m = model([helper.make_node("F", ["X"], ["Y"], domain=LOCAL)], [vi("X", [1])], [vi("Y", [1])], [f, g])
    with open(os.path.join(HERE, "recursive.onnx"), "wb") as fh:
        fh.write(m.SerializeToString())


# (5) Calls inside subgraphs, and subgraphs inside a function: the main graph's If calls
#     Scale(C, X){s} in its then-branch; Scale's body is itself an If whose then-branch reads the
#     attribute s (Constant value_float = ref s) and the formal input X from the enclosing scope.
def in_subgraph():
    then_s = helper.make_graph(
        [node_with("Constant", [], ["k"], [ref("value_float", "s", onnx.AttributeProto.FLOAT)]),
         helper.make_node("Mul", ["X", "k"], ["t"])],
        "scale_then", [], [vi("t", None)])
    else_s = helper.make_graph([helper.make_node("Identity", ["X"], ["e"])], "scale_else", [], [vi("e", None)])
    fn = helper.make_function(
        LOCAL, "Scale", ["C", "X"], ["Y"],
        [helper.make_node("If", ["C"], ["Y"], then_branch=then_s, else_branch=else_s)],
        opset_imports=[helper.make_opsetid("", 18)],
        attributes=["s"],
    )
    then_m = helper.make_graph([helper.make_node("Scale", ["flip", "X"], ["yt"], domain=LOCAL, s=3.0)],
                               "main_then", [], [vi("yt", None)])
    else_m = helper.make_graph([helper.make_node("Neg", ["X"], ["ye"])], "main_else", [], [vi("ye", None)])
    nodes = [helper.make_node("If", ["cond"], ["Y"], name="branch", then_branch=then_m, else_branch=else_m)]
    m = model(nodes, [vi("cond", [], B), vi("flip", [], B), vi("X", [3])], [vi("Y", [3])], [fn])
    x = np.array([1, -2, 0.5], np.float32)
    sets = []
    for c, fl in ((True, True), (True, False), (False, True)):
        y = (x * 3 if fl else x) if c else -x
        sets.append(({"cond": np.array(c), "flip": np.array(fl), "X": x}, {"Y": y.astype(np.float32)}))
    save(m, "in_subgraph", sets)


if __name__ == "__main__":
    linear_relu()
    nested()
    optional_input()
    recursive()
    in_subgraph()
