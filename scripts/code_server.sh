#!/usr/bin/env bash
# code-server (VS Code 1.100.3 in the browser) for stackcoder, on loopback only, behind a password.
#
#   scripts/code_server.sh install                 install code-server 4.100.3 into .cache/code-server
#   scripts/code_server.sh start VSIX FOLDER PORT  start it on 127.0.0.1:PORT with the extension installed,
#                                                  FOLDER opened, and a profile under $STACKCODER_CS_HOME
#
# The password is read from $STACKCODER_CS_PASSWORD_FILE (a file only its owner may read), else
# generated into $STACKCODER_CS_HOME/password (mode 0600) and printed once, when it is created.
# Any local user could otherwise open a shell as the user running code-server.
#
# code-server 4.100.3 is the newest release whose engines.node accepts Node 20. Its native modules
# build against the system headers (npm_config_nodedir=/usr); @vscode/ripgrep's download is replaced
# by a cached tarball of Debian's rg so the install needs no network beyond the npm registry.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION=4.100.3
PREFIX="${STACKCODER_CODE_SERVER_PREFIX:-$ROOT/.cache/code-server}"
BIN="$PREFIX/bin/code-server"
# VS Code's native modules that must build on Linux (the Windows-only ones are left out).
VSCODE_NATIVE="kerberos,native-watchdog,node-pty,@parcel/watcher,@vscode/deviceid,@vscode/ripgrep,@vscode/spdlog"

die() { echo "code_server.sh: $*" >&2; exit 1; }

# code-server writes a default config into $XDG_CONFIG_HOME on any run: keep it out of the real home.
version() { XDG_CONFIG_HOME="$PREFIX/.config" XDG_DATA_HOME="$PREFIX/.local" "$BIN" --version 2>/dev/null; }

install_code_server() {
  if [ -f "$PREFIX/.installed-$VERSION" ] && version | grep "^$VERSION" >/dev/null; then
    echo "code-server $VERSION already installed in $PREFIX"
    return
  fi
  command -v rg >/dev/null || die "ripgrep is missing; run scripts/system_deps.sh first."
  local cache
  cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
  mkdir -p "$cache"
  local tarball="$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
  if [ ! -s "$tarball" ]; then
    local stage
    stage="$(mktemp -d)"
    cp "$(command -v rg)" "$stage/rg"
    tar -C "$stage" -czf "$tarball" rg
    rm -rf "$stage"
  fi
  echo "installing code-server $VERSION into $PREFIX (a few minutes: native modules build from source)"
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  export npm_config_nodedir=/usr npm_config_yes=true npm_config_unsafe_perm=true
  # npm 11 runs no dependency install scripts unless allowed: unpack first, then run the native
  # builds code-server needs, then its own postinstall (which installs VS Code's dependencies).
  npm install --global --prefix "$PREFIX" --ignore-scripts --no-fund --no-audit --loglevel=error "code-server@$VERSION"
  local pkg="$PREFIX/lib/node_modules/code-server"
  echo "allow-scripts=argon2" >"$pkg/.npmrc"
  echo "allow-scripts=$VSCODE_NATIVE" >"$pkg/lib/vscode/.npmrc"
  (cd "$pkg" && npm rebuild --loglevel=error argon2)
  (cd "$pkg" && npm_config_user_agent="npm/$(npm --version) node/$(node --version) linux x64" sh ./postinstall.sh)
  version >/dev/null || die "code-server did not install; see the npm output above."
  touch "$PREFIX/.installed-$VERSION"
}

# Prints the path of a password file only its owner can read, creating it (and printing the new
# password once, on stderr) when it does not exist.
ensure_password() {
  local file="$1" mode
  if [ ! -s "$file" ]; then
    mkdir -p "$(dirname "$file")"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$file")
    echo "code-server password (stored in $file, shown only now): $(cat "$file")" >&2
  fi
  mode="$(stat -c %a "$file")"
  case "$mode" in
    600 | 400) ;;
    *) die "$file has mode $mode, so other users could read the password; run 'chmod 600 $file'." ;;
  esac
  [ "$(stat -c %u "$file")" = "$(id -u)" ] || die "$file belongs to another user; remove it or set STACKCODER_CS_PASSWORD_FILE."
  echo "$file"
}

start_code_server() {
  local vsix="$1" folder="$2" port="$3"
  [ -x "$BIN" ] || die "code-server is not installed; run 'scripts/code_server.sh install' first."
  [ -f "$vsix" ] || die "no extension package at $vsix; build it with 'vscode-extension/build.sh'."
  local home="${STACKCODER_CS_HOME:-$ROOT/.cache/code-server-profile}"
  rm -rf "$home/user-data" "$home/extensions"
  mkdir -p "$home/user-data/User" "$home/extensions" "$home/home" "$home/config"
  local password_file
  password_file="$(ensure_password "${STACKCODER_CS_PASSWORD_FILE:-$home/password}")"
  (
    umask 077
    cat >"$home/config/config.yaml" <<EOF
bind-addr: 127.0.0.1:$port
auth: password
password: $(cat "$password_file")
cert: false
EOF
  )
  if [ -n "${STACKCODER_CS_SETTINGS:-}" ]; then
    cp "$STACKCODER_CS_SETTINGS" "$home/user-data/User/settings.json"
  fi
  export HOME="$home/home" XDG_CONFIG_HOME="$home/home/.config" XDG_DATA_HOME="$home/home/.local/share"
  export XDG_CACHE_HOME="$home/home/.cache" EXTENSIONS_GALLERY='{"serviceUrl": "http://127.0.0.1:9/"}'
  local common=(--config "$home/config/config.yaml" --user-data-dir "$home/user-data"
    --extensions-dir "$home/extensions")
  "$BIN" "${common[@]}" --install-extension "$vsix" >/dev/null
  exec "$BIN" "${common[@]}" --disable-telemetry --disable-update-check --disable-workspace-trust \
    --ignore-last-opened "$folder"
}

case "${1:-}" in
  install) install_code_server ;;
  start)
    [ $# -eq 4 ] || die "usage: scripts/code_server.sh start VSIX FOLDER PORT"
    start_code_server "$2" "$3" "$4"
    ;;
  *) die "usage: scripts/code_server.sh install | start VSIX FOLDER PORT" ;;
esac
