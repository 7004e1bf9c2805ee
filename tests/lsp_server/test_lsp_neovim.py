"""A second real client: Debian's Neovim (headless) drives code actions and infill through its LSP client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lsp_helpers import SERVER_COMMAND, server_env

NVIM = shutil.which("nvim")


@pytest.mark.skipif(NVIM is None, reason="neovim is not installed (scripts/system_deps.sh installs it)")
def test_neovim_code_actions_and_infill_edit(tmp_path: Path, default_model_dir: Path) -> None:
    source = tmp_path / "shapes.py"
    source.write_text("def area(w, h):\n    return <FILL_HERE>\n\n\nprint(area(2, 3))\n")
    out = tmp_path / "result.json"
    env = server_env(
        STACKCODER_NVIM_CMD=json.dumps(SERVER_COMMAND),
        STACKCODER_NVIM_FILE=str(source),
        STACKCODER_NVIM_MODEL=str(default_model_dir),
        STACKCODER_NVIM_OUT=str(out),
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    script = Path(__file__).with_name("nvim_client.lua")
    proc = subprocess.run(
        [NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {script}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=280,
        stdin=subprocess.DEVNULL,
    )
    assert out.exists(), proc.stderr.decode(errors="replace")[-2000:]
    result = json.loads(out.read_text())
    assert "error" not in result, result
    assert result["steps"] == ["initialized=true", "model=true"], result
    assert result["inline_completion_provider"] is True
    assert set(result["actions"]) == {"stackcoder.infill", "stackcoder.explain", "stackcoder.checkProvenance"}
    assert result.get("infill", {}).get("applied") is True, json.dumps(result)
    # Neovim applied the server's edit: the marker is gone and the filled text is in the buffer
    assert "<FILL_HERE>" not in result["buffer"]
    assert result["buffer"].startswith(
        "def area(w, h):\n    return " + result["infill"]["text"].split("\n")[0]
    )
    assert result["buffer"].endswith("print(area(2, 3))")
    assert os.path.exists(source)
