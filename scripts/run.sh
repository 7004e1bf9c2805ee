#!/usr/bin/env bash
# Set everything up and open stackcoder in VS Code on the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
make install
exec .venv/bin/stackcoder --help
