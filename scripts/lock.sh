#!/usr/bin/env bash
# Refresh the locked Python dependencies (`make lock`): resolve pyproject.toml with uv and write
# every package's exact version and sha256 hashes to scripts/locks/. Commit both files; a fresh
# machine then installs exactly these (scripts/install.sh, pip --require-hashes).
#   all.txt  everything `make test` needs (the package with its train, cluster and dev extras)
#   run.txt  what the product needs at run time (`make run`), the same versions as all.txt
# torch is the CPU build (2.13.0+cpu): from PyTorch's CPU index, or a local wheel folder named in
# pip's find-links (PIP_FIND_LINKS); never the default CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet uv
UV=.venv/bin/uv
COMMON=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header
  --override scripts/locks/overrides.txt)
[ -n "${PIP_FIND_LINKS:-}" ] && COMMON+=(--find-links "$PIP_FIND_LINKS")
$UV pip compile pyproject.toml --extra train --extra cluster --extra dev "${COMMON[@]}" \
  -o scripts/locks/all.txt
$UV pip compile pyproject.toml --constraint scripts/locks/all.txt "${COMMON[@]}" -o scripts/locks/run.txt
echo "locked: $(grep -c '==' scripts/locks/all.txt) packages for the tests, $(grep -c '==' scripts/locks/run.txt) to run"
