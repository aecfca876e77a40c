#!/usr/bin/env python3
"""Checks an ONNX file the way Kiln's export tests need, and runs it in onnxruntime:

    onnx_check.py MODEL.onnx [--feeds DIR --out DIR]

1. onnx.checker.check_model(MODEL, full_check=True) (with shape inference; external data is
   read from beside the model).
2. With --feeds: runs the model in onnxruntime (CPU, graph optimisations off, as
   testdata/ort_reference.py does) on DIR/input_<name>.npy for every model input, and writes
   --out/output_<name>.npy per output (a sequence of maps as its values, one row per map, and
   output_<name>.keys.npy), with names sanitised as ort_reference.py does. A --feeds folder of
   numbered sub-folders, one feed each, gives --out/<sub>/output_<name>.npy for each.

Prints one JSON line on success; exits 1 with the reason on stderr otherwise. Needs onnx and
onnxruntime (ci/test.sh installs them into testdata/cache/venv).
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--feeds")
    ap.add_argument("--out")
    a = ap.parse_args()
    try:
        onnx.checker.check_model(a.model, full_check=True)
    except Exception as e:  # the checker's own exception types vary by version
        print(f"onnx.checker (full_check) rejects {a.model}: {e}", file=sys.stderr)
        return 1
    report = {"model": a.model, "checker": "ok", "onnx": onnx.__version__, "onnxruntime": ort.__version__}
    if a.feeds:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 2
        try:
            session = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            print(f"onnxruntime cannot load {a.model}: {e}", file=sys.stderr)
            return 1
        # --feeds DIR holds one feed, or numbered sub-folders (000/, 001/, ...) of one feed
        # each, run in turn by the one session; --out mirrors that layout.
        subs = sorted(d for d in os.listdir(a.feeds) if os.path.isdir(os.path.join(a.feeds, d)))
        runs = [(os.path.join(a.feeds, d), os.path.join(a.out, d)) for d in subs] or [(a.feeds, a.out)]
        names = [o.name for o in session.get_outputs()]
        for feed_dir, out_dir in runs:
            feeds = {}
            for i in session.get_inputs():
                v = np.load(os.path.join(feed_dir, f"input_{sanitize(i.name)}.npy"))
                feeds[i.name] = v.astype(object) if v.dtype.kind == "U" else v
            try:
                outs = session.run(names, feeds)
            except Exception as e:
                print(f"onnxruntime fails to run {a.model}: {e}", file=sys.stderr)
                return 1
            os.makedirs(out_dir, exist_ok=True)
            for name, value in zip(names, outs):
                if isinstance(value, list):  # a sequence of maps with the same keys
                    keys = list(value[0].keys()) if value else []
                    np.save(os.path.join(out_dir, f"output_{sanitize(name)}.keys.npy"), np.array(keys))
                    value = np.array([[m[k] for k in keys] for m in value], dtype=np.float32)
                value = np.array(value, order="C")
                if value.dtype == object:
                    value = value.astype(str)
                np.save(os.path.join(out_dir, f"output_{sanitize(name)}.npy"), value)
        report["outputs"] = names
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
