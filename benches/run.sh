#!/usr/bin/env bash
# Kiln against its peers on this machine, in one run:
#
#   bash benches/run.sh [--rounds N] [--budget-s S] [--only LABEL] [--no-gemm] [--no-models]
#
# Kiln's compiled CPU plan, tract (tract-onnx, a Rust crate built here) and onnxruntime (the
# test venv's, through benches/ort_worker.py) run the same models on the same seeded inputs,
# interleaved; then a GEMM microbenchmark against the measured FMA peak. benches/peers is a
# workspace of its own, so neither the root workspace nor CI builds tract. Its first release
# build takes several minutes on 2 cores. Not a test: nothing here asserts a timing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache="${KILN_TESTDATA:-$root/testdata/cache}"
export KILN_TESTDATA="$cache"
venv="$cache/venv"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then
  echo "The Python venv with onnxruntime ($venv) is missing." >&2
  echo "Create it (and everything else the tests need) once with:  bash ci/test.sh" >&2
  exit 1
fi
PATH="$venv/bin:$PATH" bash testdata/fetch.sh >/dev/null

echo "building benches/peers (release; tract's first build is slow)..." >&2
cargo build --release --quiet --manifest-path benches/peers/Cargo.toml --target-dir "$root/target/peers"
echo "kiln commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
exec "$root/target/peers/release/kiln-peers" "$@"
