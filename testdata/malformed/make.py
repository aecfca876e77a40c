#!/usr/bin/env python3
"""Writes the importer's test fixtures (small, committed) next to this script.

    python3 testdata/malformed/make.py        # needs onnx==1.16.2 and numpy

Malformed files (`*.onnx` here) must each make `kiln_onnx::load` return an error naming the
tensor, node or value at fault (crates/onnx/tests/malformed.rs). Valid files (`valid/*.onnx`)
exercise import features (crates/onnx/tests/import.rs). Output is deterministic: rerunning
the script rewrites the same bytes.
"""
import os
import random
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
VALID = os.path.join(HERE, "valid")
F = TensorProto.FLOAT


def model(nodes, inputs, outputs, initializers=(), opset=17, ir_version=8, name="g", **kw):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers), **kw)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version,
                             producer_name="kiln testdata/malformed/make.py")


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def save(m, name, folder=HERE):
    write(os.path.join(folder, name), m.SerializeToString())


def raw_tensor(name, dims, data_type=F, raw=b""):
    t = TensorProto()
    t.name = name
    t.dims.extend(dims)
    t.data_type = data_type
    t.raw_data = raw
    return t


def external(name, dims, location, offset=0, length=None):
    t = TensorProto()
    t.name = name
    t.dims.extend(dims)
    t.data_type = F
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location), ("offset", str(offset))]
    if length is not None:
        entries.append(("length", str(length)))
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def add_model(init, name="adder"):
    """y = x + W, with W given by `init`."""
    dims = list(init.dims) if all(d >= 0 for d in init.dims) and len(init.dims) < 4 else [1]
    return model([helper.make_node("Add", ["x", init.name], ["y"], name=name)],
                 [vi("x", dims)], [vi("y", dims)], [init])


def must_not_parse(data):
    try:
        onnx.ModelProto.FromString(data)
    except Exception:
        return
    raise SystemExit("fixture unexpectedly parses as a ModelProto")


def malformed():
    rng = random.Random(1234)
    w = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "W")
    whole = add_model(w).SerializeToString()
    # Cut inside W's raw_data: the length prefix promises bytes that are not there.
    truncated = whole[: whole.index(np.float32(40).tobytes()) + 2]
    must_not_parse(truncated)
    write(os.path.join(HERE, "truncated.onnx"), truncated)

    # Cut exactly at the end of the graph's first node: every nested message is whole, only the
    # graph's (and so the model's) length prefix promises more.
    two = model([helper.make_node("Relu", ["x"], ["r"], name="first"), helper.make_node("Neg", ["r"], ["y"], name="second")],
                [vi("x", [2])], [vi("y", [2])])
    data = two.SerializeToString()
    first = two.graph.node[0].SerializeToString()
    cut = data.index(first) + len(first)
    must_not_parse(data[:cut])
    write(os.path.join(HERE, "truncated_at_boundary.onnx"), data[:cut])
    # Cut right after the graph: a whole ModelProto without its opset_import (field 8).
    graph_end = data.index(two.graph.SerializeToString()) + len(two.graph.SerializeToString())
    no_opset = onnx.ModelProto.FromString(data[:graph_end])
    assert not no_opset.opset_import
    write(os.path.join(HERE, "no_opset_import.onnx"), data[:graph_end])

    # Wire type 7 does not exist, so the very first tag is invalid; the rest is noise.
    noise = bytes([0x0F]) + bytes(rng.randrange(256) for _ in range(255))
    must_not_parse(noise)
    write(os.path.join(HERE, "random_bytes.onnx"), noise)

    write(os.path.join(HERE, "empty.onnx"), b"")

    save(add_model(raw_tensor("short_raw", [2, 3], raw=b"\0" * 20)), "raw_data_length.onnx")
    save(add_model(raw_tensor("neg_dims", [2, -3], raw=b"")), "negative_dims.onnx")
    # 2^80 elements: must be refused from the dims alone, before any allocation.
    save(add_model(raw_tensor("huge", [1 << 40, 1 << 40], raw=b"\0" * 4)), "absurd_dims.onnx")
    # Fits the element limit but the (absent) data does not: refused without allocating 32 GiB.
    save(add_model(raw_tensor("big_empty", [1 << 33], raw=b"")), "large_dims_no_data.onnx")
    save(add_model(raw_tensor("odd_type", [2], data_type=99, raw=b"\0" * 8)), "unknown_dtype.onnx")

    cyc = model(
        [
            helper.make_node("Add", ["x", "b"], ["a"], name="cycle_a"),
            helper.make_node("Relu", ["a"], ["b"], name="cycle_b"),
            helper.make_node("Identity", ["b"], ["y"], name="out"),
        ],
        [vi("x", [2])], [vi("y", [2])])
    save(cyc, "cycle.onnx")

    missing = model([helper.make_node("Add", ["x", "no_such_weight"], ["y"], name="reader")],
                    [vi("x", [2])], [vi("y", [2])])
    save(missing, "missing_value.onnx")

    undefined_out = model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                          [vi("x", [2])], [vi("y", [2]), vi("never_made", [2])])
    save(undefined_out, "undefined_output.onnx")

    save(add_model(external("W_parent", [2, 2], "../secret.bin")), "external_parent.onnx")
    save(add_model(external("W_abs", [2, 2], "/etc/passwd")), "external_absolute.onnx")
    write(os.path.join(HERE, "external_short.bin"), b"\0" * 8)
    save(add_model(external("W_short", [4, 4], "external_short.bin")), "external_short.onnx")
    save(add_model(external("W_missing", [2], "no_such_file.bin")), "external_missing.onnx")
    save(add_model(external("W_len", [2, 2], "external_short.bin", length=4)), "external_bad_length.onnx")

    save(model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])], opset=99),
         "opset99.onnx")
    save(model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])], ir_version=1),
         "ir_version1.onnx")

    # A sparse initializer whose coordinate is negative.
    values = numpy_helper.from_array(np.array([1.0, 2.0], dtype=np.float32), "sparse_bad")
    indices = numpy_helper.from_array(np.array([[0, 1], [-1, 2]], dtype=np.int64), "sparse_bad_idx")
    sp = helper.make_sparse_tensor(values, indices, [3, 4])
    g = helper.make_graph([helper.make_node("Add", ["x", "sparse_bad"], ["y"])], "g",
                          [vi("x", [3, 4])], [vi("y", [3, 4])], sparse_initializer=[sp])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), "sparse_bad_index.onnx")

    # A sparse initializer whose dense form is absurdly large (2^34 floats) for 1 value.
    values = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "sparse_huge")
    indices = numpy_helper.from_array(np.array([5], dtype=np.int64), "sparse_huge_idx")
    sp = helper.make_sparse_tensor(values, indices, [1 << 17, 1 << 17])
    g = helper.make_graph([helper.make_node("Identity", ["sparse_huge"], ["y"])], "g", [], [vi("y", [1])],
                          sparse_initializer=[sp])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), "sparse_huge.onnx")

    # Names defined twice.
    w1 = numpy_helper.from_array(np.ones(2, dtype=np.float32), "twice")
    w2 = numpy_helper.from_array(np.zeros(2, dtype=np.float32), "twice")
    m = model([helper.make_node("Add", ["x", "twice"], ["y"])], [vi("x", [2])], [vi("y", [2])], [w1, w2])
    save(m, "duplicate_initializer.onnx")
    m = model([helper.make_node("Add", ["x", "x"], ["y"])], [vi("x", [2]), vi("x", [2])], [vi("y", [2])])
    save(m, "duplicate_input.onnx")

    # A value_info with a negative dimension.
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2, -5])], [vi("y", [2])])
    save(m, "negative_value_dim.onnx")

    # An If whose then-branch reads a value defined nowhere.
    then_g = helper.make_graph([helper.make_node("Identity", ["ghost"], ["t"], name="then_id")], "then", [],
                               [vi("t", [2])])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [vi("e", [2])])
    m = model([helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)],
              [vi("c", [], TensorProto.BOOL), vi("x", [2])], [vi("y", [2])])
    save(m, "subgraph_dangling.onnx")


def valid():
    os.makedirs(VALID, exist_ok=True)
    # External data at an offset inside a file of the model's folder.
    w = np.array([[1.5, -2.0, 3.25], [0.0, 4.0, -0.5]], dtype=np.float32)
    pad = b"KILN-PAD" * 2
    write(os.path.join(VALID, "external.bin"), pad + w.tobytes() + b"tail")
    save(add_model(external("W", [2, 3], "external.bin", offset=len(pad), length=w.nbytes)), "external.onnx", VALID)

    # Sparse initializers: linear indices and [NNZ, rank] coordinates.
    v1 = numpy_helper.from_array(np.array([1.5, -2.0, 7.0], dtype=np.float32), "S_linear")
    i1 = numpy_helper.from_array(np.array([1, 6, 11], dtype=np.int64), "S_linear_idx")
    v2 = numpy_helper.from_array(np.array([4, 9], dtype=np.int64), "S_coo")
    i2 = numpy_helper.from_array(np.array([[0, 2], [2, 3]], dtype=np.int64), "S_coo_idx")
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "S_linear"], ["y"]), helper.make_node("Identity", ["S_coo"], ["z"])],
        "sparse", [vi("x", [3, 4])], [vi("y", [3, 4]), vi("z", [3, 4], TensorProto.INT64)],
        sparse_initializer=[helper.make_sparse_tensor(v1, i1, [3, 4]), helper.make_sparse_tensor(v2, i2, [3, 4])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), "sparse.onnx", VALID)

    # An If whose branches read 'outer', a value of the enclosing graph.
    then_g = helper.make_graph([helper.make_node("Identity", ["outer"], ["t"])], "then", [], [vi("t", [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["outer"], ["e"])], "else", [], [vi("e", [2])])
    m = model(
        [
            helper.make_node("Relu", ["x"], ["outer"], name="make_outer"),
            helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
        ],
        [vi("c", [], TensorProto.BOOL), vi("x", [2])], [vi("y", [2])])
    save(m, "if_outer.onnx", VALID)

    # metadata_props and the other model-level fields.
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])])
    helper.set_model_props(m, {"author": "kiln", "license": "Apache-2.0", "empty": ""})
    m.doc_string = "a model with metadata"
    m.model_version = 7
    m.domain = "org.kiln.test"
    save(m, "metadata.onnx", VALID)

    # Ops no op set knows, in the default and a custom domain, around a known one.
    g = helper.make_graph(
        [
            helper.make_node("FancyOp", ["x"], ["a"], name="fancy"),
            helper.make_node("Relu", ["a"], ["b"], name="relu"),
            helper.make_node("Mystery", ["b"], ["y"], name="mystery", domain="com.example"),
        ],
        "unknown", [vi("x", [2])], [vi("y", [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
                          ir_version=8)
    save(m, "unknown_ops.onnx", VALID)

    # -1 as "unknown dimension", as paddle2onnx writes it (ch_ppocr_mobile_v2.0_cls does).
    # "?" dims likewise: each is its own unknown, not one shared symbol.
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [-1, 3, "?", "?"])], [vi("y", [-1, 3, "?", "?"])])
    save(m, "minus_one_dim.onnx", VALID)

    # Serialized TensorProtos (the input_N.pb form of ONNX test data), raw and typed, for
    # read_tensor_file's mutation test.
    t = numpy_helper.from_array(np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3), "raw_f32")
    write(os.path.join(VALID, "tensor_raw.pb"), t.SerializeToString())
    t = helper.make_tensor("typed_i64", TensorProto.INT64, [2, 2], [1, -2, 3, 1 << 40])
    write(os.path.join(VALID, "tensor_typed.pb"), t.SerializeToString())

    # A model-local function called twice, with an attribute reference, for mutation tests of
    # function expansion.
    leaky = helper.make_node("LeakyRelu", ["m"], ["out"])
    ref = helper.make_attribute_ref("alpha", helper.AttributeProto.FLOAT)
    ref.ref_attr_name = "alpha"  # make_attribute_ref (onnx 1.16) leaves it unset
    leaky.attribute.append(ref)
    body = [helper.make_node("Mul", ["a", "s"], ["m"]), leaky]
    fn = helper.make_function("org.kiln.test", "ScaledLeaky", ["a", "s"], ["out"], body,
                              [helper.make_opsetid("", 17)], attributes=["alpha"])
    nodes = [
        helper.make_node("ScaledLeaky", ["x", "k"], ["h"], domain="org.kiln.test", name="call1", alpha=0.1),
        helper.make_node("ScaledLeaky", ["h", "k"], ["y"], domain="org.kiln.test", name="call2", alpha=0.2),
    ]
    k = numpy_helper.from_array(np.array([2.0], dtype=np.float32), "k")
    g = helper.make_graph(nodes, "fn", [vi("x", [3])], [vi("y", [3])], initializer=[k])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("org.kiln.test", 1)],
                          ir_version=8, functions=[fn])
    onnx.checker.check_model(m)
    save(m, "function.onnx", VALID)

    # A small model with some of everything, for mutation tests: initializers (raw and typed),
    # attributes of several kinds, a subgraph, value_info and a sparse initializer.
    then_g = helper.make_graph([helper.make_node("Identity", ["h"], ["t"])], "then", [], [vi("t", [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["h"], ["e"])], "else", [], [vi("e", [2, 3])])
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["g"], name="gemm", alpha=0.5, transB=1),
        helper.make_node("Relu", ["g"], ["h"], name="relu"),
        helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(np.array([2.0, 3.0, 4.0], dtype=np.float32))),
        helper.make_node("If", ["c"], ["i"], name="branch", then_branch=then_g, else_branch=else_g),
        helper.make_node("Mul", ["i", "k"], ["m"], name="mul"),
        helper.make_node("Add", ["m", "S"], ["y"], name="add"),
    ]
    W = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "W")
    B = helper.make_tensor("B", F, [3], [0.1, 0.2, 0.3])  # typed float_data, not raw
    sv = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "S")
    si = numpy_helper.from_array(np.array([4], dtype=np.int64), "S_idx")
    g = helper.make_graph(nodes, "small", [vi("x", [2, 4]), vi("c", [], TensorProto.BOOL)], [vi("y", [2, 3])],
                          initializer=[W, B], sparse_initializer=[helper.make_sparse_tensor(sv, si, [2, 3])],
                          value_info=[vi("g", ["batch", 3]), vi("h", [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(m, {"purpose": "mutation seed"})
    save(m, "small.onnx", VALID)


if __name__ == "__main__":
    if onnx.__version__ != "1.16.2":
        print(f"warning: onnx {onnx.__version__}; fixtures were made with 1.16.2", file=sys.stderr)
    malformed()
    valid()
    print("fixtures written under", HERE)
