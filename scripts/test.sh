#!/usr/bin/env bash
# The whole test suite: lint, Python tests (unit, protocol-level and VS Code end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
scripts/system_deps.sh
make install-all
.venv/bin/stackcoder models pull --quiet  # the real default model the tests run (once; verified by sha256)
.venv/bin/ruff check .
vscode-extension/build.sh --test  # the extension: npm ci, tsc, unit tests (node --test)
.venv/bin/python -m pytest -q "$@"
