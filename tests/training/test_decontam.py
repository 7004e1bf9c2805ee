"""Decontamination drops files holding HumanEval problems and keeps ordinary code."""

from __future__ import annotations

from helpers.training_corpus import humaneval_solution, stdlib_files

from training.decontam import Decontaminator


def test_planted_humaneval_solution_is_found() -> None:
    d = Decontaminator.for_benchmarks(["humaneval"])
    assert d.match(humaneval_solution()) == "HumanEval/0:function"
    # Re-indented or with other whitespace, still found.
    assert d.match(humaneval_solution().replace("    ", "\t")) is not None


def test_ordinary_code_is_kept() -> None:
    d = Decontaminator.for_benchmarks(["humaneval"])
    for path in stdlib_files(30):
        assert d.match(path.read_text(encoding="utf-8")) is None, path


def test_unknown_benchmark_lists_known_ones() -> None:
    import pytest

    from training.errors import ConfigError

    with pytest.raises(ConfigError, match="humaneval"):
        Decontaminator.for_benchmarks(["nope"])
