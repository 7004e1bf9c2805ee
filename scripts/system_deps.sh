#!/usr/bin/env bash
# Debian packages the tests start for real: a sandbox, a Redis server, a JVM for Spark,
# an editor with an LSP client, and Chromium for the VS Code end-to-end tests.
set -euo pipefail
PACKAGES=(bubblewrap redis-server default-jre-headless neovim chromium ripgrep libkrb5-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "system packages ready: ${PACKAGES[*]}"
