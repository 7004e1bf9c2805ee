"""scripts/code_server.sh never starts code-server without a password (a stub stands in for it)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "code_server.sh"
# Records the config it was started with instead of serving.
STUB = '#!/bin/sh\nfor a; do [ "$prev" = --config ] && cp "$a" "$STUB_OUT"; prev="$a"; done\nexit 0\n'


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    stub = prefix / "bin" / "code-server"
    stub.write_text(STUB)
    stub.chmod(0o755)
    vsix = tmp_path / "x.vsix"
    vsix.write_text("")
    return subprocess.run(
        [str(SCRIPT), "start", str(vsix), str(tmp_path), "8123"],
        env={
            **os.environ,
            "STACKCODER_CODE_SERVER_PREFIX": str(prefix),
            "STACKCODER_CS_HOME": str(tmp_path / "home"),
            "STUB_OUT": str(tmp_path / "seen.yaml"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_generated_password_is_required_stored_privately_and_printed_once(tmp_path: Path) -> None:
    first = _start(tmp_path)
    assert first.returncode == 0, first.stderr
    password = (tmp_path / "home" / "password").read_text()
    assert len(password) >= 20
    assert _mode(tmp_path / "home" / "password") == 0o600
    assert password in first.stderr
    config = (tmp_path / "seen.yaml").read_text()
    assert "auth: password" in config and f"password: {password}" in config
    assert "bind-addr: 127.0.0.1:8123" in config and "auth: none" not in config
    assert _mode(tmp_path / "home" / "config" / "config.yaml") == 0o600
    second = _start(tmp_path)
    assert second.returncode == 0 and password not in second.stderr
    assert (tmp_path / "home" / "password").read_text() == password


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_a_password_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    given = tmp_path / "pw"
    given.write_text("hunter2hunter2")
    given.chmod(mode)
    result = _start(tmp_path, STACKCODER_CS_PASSWORD_FILE=str(given))
    assert result.returncode != 0
    assert "chmod 600" in result.stderr
    assert not (tmp_path / "seen.yaml").exists()
