"""`stackcoder index build|query` through the real command-line entry point."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from stackcoder_cli.main import main

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "mini"
    root.mkdir(parents=True)
    (root / "LICENSE").write_text((STDLIB / "LICENSE.txt").read_text())
    shutil.copy(STDLIB / "textwrap.py", root / "textwrap.py")
    (root / "blob.bin").write_bytes(b"\x00" * 100)
    return root


def test_build_then_query_json_and_terminal(tmp_path: Path, repo: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "idx"
    assert (
        main(
            ["index", "build", str(repo), "--out", str(out), "--ext", "py", "--no-progress", "--workers", "1"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "indexed 1 files" in printed and "extension 2" in printed
    snippet = tmp_path / "q.py"
    lines = (STDLIB / "textwrap.py").read_text().splitlines()
    snippet.write_text("\n".join(lines[201:230]) + "\n")  # lines 202-230, neither end blank
    assert main(["index", "query", "--index", str(out), "--json", str(snippet)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "copied"
    match = report["matches"][0]
    assert (match["repo"], match["path"], match["license"]) == ("mini", "textwrap.py", "PSF-2.0")
    assert (match["source_start_line"], match["source_end_line"]) == (202, 230)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(snippet.read_bytes())))
    assert main(["index", "query", "--index", str(out), "-"]) == 0
    assert "verdict: copied" in capsys.readouterr().out


def test_errors_are_one_sentence_without_traceback(tmp_path: Path, capsys) -> None:
    assert main(["index", "query", "--index", str(tmp_path / "none"), "-"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stackcoder: error: no index at") and "Traceback" not in err
    assert (
        main(["index", "build", str(tmp_path / "nothing"), "--out", str(tmp_path / "i"), "--no-progress"])
        == 1
    )
    assert "does not exist" in capsys.readouterr().err


def test_help_is_fast_and_describes_commands() -> None:
    code = "import sys, stackcoder_cli.main as m; m.main(['index', 'build', '--help'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "The Stack's schema" in done.stdout
    heavy = "import sys, attribution.cli; print('numpy' in sys.modules, 'bm25s' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", heavy], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"]
