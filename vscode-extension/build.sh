#!/usr/bin/env bash
# Build the stackcoder VS Code extension: install the pinned Node packages (npm ci), type-check,
# bundle with esbuild, run the unit tests, and package vscode-extension/stackcoder.vsix.
#   vscode-extension/build.sh            everything
#   vscode-extension/build.sh --test     install, type-check and unit tests only
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "build.sh: npm is missing; install Node.js 20 (apt-get install nodejs npm)." >&2; exit 1; }
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-fund --no-audit --loglevel=error
fi
node_modules/.bin/tsc --noEmit -p .
node esbuild.mjs --tests
node --test --test-reporter=dot out/test/
[ "${1:-}" = "--test" ] && exit 0
node esbuild.mjs
node_modules/.bin/vsce package --no-dependencies --skip-license --allow-missing-repository --out stackcoder.vsix >/dev/null
echo "built $(pwd)/stackcoder.vsix"
