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


# A record in MBPP's schema (mbpp.jsonl): no package ships MBPP, so the test writes its own.
MBPP_RECORD = {
    "task_id": 17,
    "text": "Write a function to find the perimeter of a square.",
    "code": "def square_perimeter(a):\n  perimeter=4*a\n  return perimeter",
    "test_list": [
        "assert square_perimeter(10)==40",
        "assert square_perimeter(5)==20",
        "assert square_perimeter(4)==16",
    ],
}


def _mbpp_file(tmp_path):
    import json

    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(MBPP_RECORD) + "\n")
    return path


def test_benchmark_file_solutions_and_tests_are_found(tmp_path) -> None:
    d = Decontaminator.for_benchmarks([], [str(_mbpp_file(tmp_path))])
    # Copied into a module with other indentation (whitespace runs are normalised).
    copied = "import math\n\n\ndef square_perimeter(a):\n    perimeter=4*a\n    return  perimeter\n"
    assert d.match(copied) == "mbpp/17:solution"
    tests = "def test():\n    " + "\n    ".join(MBPP_RECORD["test_list"]) + "\n"
    assert d.match(tests) == "mbpp/17:tests"
    assert d.match("def square_perimeter(side):\n    return 4 * side\n") is None


def test_corpus_screen_drops_benchmark_file_problems(tmp_path) -> None:
    from training.corpus import CorpusConfig, Screen

    screen = Screen(CorpusConfig(decontaminate=(), decontaminate_files=(str(_mbpp_file(tmp_path)),)))
    content = MBPP_RECORD["code"] + "\n"
    assert screen.drop_reason("repo", "a.py", "MIT", content) == ("decontamination", "mbpp")
    ordinary = stdlib_files(1)[0].read_text(encoding="utf-8")
    assert screen.drop_reason("repo", "b.py", "MIT", ordinary) is None


def test_unreadable_benchmark_file_says_what_to_pass(tmp_path) -> None:
    import pytest

    from training.errors import ConfigError

    bad = tmp_path / "bench.jsonl"
    bad.write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match="MBPP-style jsonl"):
        Decontaminator.for_benchmarks([], [str(bad)])
    with pytest.raises(ConfigError, match="cannot be read"):
        Decontaminator.for_benchmarks([], [str(tmp_path / "missing.jsonl")])
