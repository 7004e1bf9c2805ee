"""`stackcoder convert` and `stackcoder complete` through the console entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine
from engine.cli import split_at
from engine.loading import CT2_MARKER
from engine.types import Completion
from stackcoder_cli.main import main

SOURCE = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"


def test_convert_command(tmp_path: Path, tiny_starcoder2_dir: Path, capsys) -> None:
    out = tmp_path / "ct2"
    assert main(["convert", str(tiny_starcoder2_dir), str(out), "--quantization", "int8"]) == 0
    assert (out / CT2_MARKER).exists()
    assert main(["convert", str(tiny_starcoder2_dir), str(out)]) == 1
    assert "--force" in capsys.readouterr().err


def test_complete_json(tmp_path: Path, tiny_gptbigcode_dir: Path, engine_cache_dir: Path, capsys) -> None:
    source = tmp_path / "ops.py"
    source.write_text(SOURCE)
    code = main(
        [
            "complete",
            str(source),
            "--line",
            "5",
            "--column",
            "4",
            "--model",
            str(tiny_gptbigcode_dir),
            "--json",
            "--max-new-tokens",
            "8",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"text", "model", "latency_ms", "attribution"}
    assert payload["model"] == tiny_gptbigcode_dir.name and payload["attribution"] is None
    assert isinstance(payload["text"], str) and payload["latency_ms"] > 0


def test_complete_errors_are_one_line(tmp_path: Path, capsys) -> None:
    source = tmp_path / "ops.py"
    source.write_text(SOURCE)
    assert (
        main(["complete", str(source), "--line", "2", "--column", "0", "--model", str(tmp_path / "none")])
        == 1
    )
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    with pytest.raises(SystemExit, match="outside"):
        main(["complete", str(source), "--line", "40", "--column", "0"])


def test_split_at() -> None:
    assert split_at("ab\ncd\n", 1, 1) == ("ab\nc", "d\n")
    assert split_at("ab\ncd\n", 0, 2) == ("ab", "\ncd\n")
    with pytest.raises(ValueError, match="columns 0 to 2"):
        split_at("ab\ncd\n", 1, 3)


def test_help_is_fast_and_lists_commands(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["complete", "--help"])
    assert "0-based" in capsys.readouterr().out


class _SilentModel:
    """A model whose post-processed completion is empty (what a weak model often gives)."""

    def __init__(self, raw: str) -> None:
        self.raw = raw

    def complete(self, prefix: str, suffix: str, **_options) -> Completion:
        return Completion(text="", model="silent", latency_ms=1.0, raw=self.raw)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("", "ended its output at once"), ("self.n_n_n_n_n_n_n_n", "post-processing dropped its output")],
)
def test_complete_says_why_nothing_was_suggested(
    tmp_path: Path, monkeypatch, capsys, raw: str, reason: str
) -> None:
    source = tmp_path / "ops.py"
    source.write_text(SOURCE)
    monkeypatch.setattr(engine, "load_model", lambda *args, **kwargs: _SilentModel(raw))
    assert main(["complete", str(source), "--line", "5", "--column", "4"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no suggestion at line 5, column 4" in captured.err and reason in captured.err
    assert "--temperature" in captured.err
