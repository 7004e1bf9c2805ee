#!/usr/bin/env bash
# Install stackcoder into .venv with exactly the locked dependency versions (scripts/locks/).
#   scripts/install.sh run   what the product needs (`make run`)
#   scripts/install.sh all   everything the tests need too (`make test`; the default)
# llama.cpp (llama-cpp-python) is compiled from its pinned source for this machine's CPU
# (GGML_NATIVE: AVX2, AVX-512, VNNI, BF16, AMX where present) and rebuilt when .venv is used on
# a CPU with other instruction sets. Reruns are quick: nothing changes unless a lock file, the
# package or the CPU did.
set -euo pipefail
cd "$(dirname "$0")/.."
SET=${1:-all}
LOCK=scripts/locks/$SET.txt
[ -f "$LOCK" ] || { echo "install.sh: no lock file $LOCK (use 'run' or 'all')" >&2; exit 2; }
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|avx2|fma|f16c|avx512[a-z_0-9]*|avx_vnni|amx[a-z_0-9]*)$' | sort | tr '\n' ' ')
stamp=".venv/.installed-$SET"
want="$(cat "$LOCK" pyproject.toml | sha256sum | cut -c1-16) $cpu_flags"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "stackcoder ($SET) is installed in .venv"
  exit 0
fi

# llama.cpp for this CPU; a wheel built on another CPU (pip's cache, an older .venv) is never reused.
llama_stamp=.venv/.llama-cpp-cpu
llama_line=$(grep -A1 '^llama-cpp-python==' "$LOCK" | tr -d '\\\n' | tr -s ' ')
if [ ! -f "$llama_stamp" ] || [ "$(cat "$llama_stamp")" != "$cpu_flags $llama_line" ]; then
  echo "building llama.cpp for this CPU ($cpu_flags) — a few minutes on 2 cores"
  tmp_req=$(mktemp)
  echo "$llama_line" >"$tmp_req"
  CMAKE_ARGS="-DGGML_NATIVE=ON ${CMAKE_ARGS:-}" "${PIP[@]}" install --quiet --no-cache-dir \
    --force-reinstall --no-deps --require-hashes -r "$tmp_req"
  rm -f "$tmp_req"
  echo "$cpu_flags $llama_line" >"$llama_stamp"
fi

# Everything else exactly as locked (torch is the CPU build; pip's find-links or PyTorch's CPU index).
"${PIP[@]}" install --quiet --require-hashes --no-deps -r "$LOCK"
"${PIP[@]}" install --quiet --no-deps --no-build-isolation -e .
"${PIP[@]}" check >/dev/null || { "${PIP[@]}" check >&2; exit 1; }
echo "$want" >"$stamp"
echo "stackcoder ($SET) installed in .venv ($(.venv/bin/stackcoder --help >/dev/null && echo ok))"
