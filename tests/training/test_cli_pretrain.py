"""`stackcoder train` stages: help texts and clear errors for bad input."""

from __future__ import annotations

import pytest

from stackcoder_cli.main import build_parser, main


@pytest.mark.parametrize("stage", ["corpus", "tokenizer", "pretrain", "eval", "export"])
def test_stage_help(stage: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["train", stage, "--help"])
    assert exc.value.code == 0
    assert "usage: stackcoder train " + stage in capsys.readouterr().out


def test_errors_are_one_sentence(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["train", "corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 1
    assert "no usable" in capsys.readouterr().err
    assert (
        main(["train", "tokenizer", "--corpus", str(tmp_path / "nothing"), "--out", str(tmp_path / "t")]) == 1
    )
    assert "stackcoder train corpus" in capsys.readouterr().err
    assert main(["train", "export", str(tmp_path), "--out", str(tmp_path / "b")]) == 1
    assert "holds no checkpoint" in capsys.readouterr().err
