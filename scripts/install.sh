#!/usr/bin/env bash
# Create .venv and install stackcoder with everything its tests need (CPU-only torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned in pyproject.toml to the CPU wheel; install it first so no resolver picks a CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,spark,llama]"
echo "stackcoder installed in .venv ($(.venv/bin/stackcoder --help >/dev/null && echo ok))"
