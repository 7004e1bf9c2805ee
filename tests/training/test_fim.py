"""StarCoder's FIM transform: cuts round-trip and the token layouts are PSM/SPM as DESIGN.md."""

from __future__ import annotations

import random

from helpers.training_corpus import stdlib_files

from training.fim import FimSplit, FimTokens, fim_encode, fim_split

IDS = FimTokens(prefix=1, middle=2, suffix=3)


def _encode(text: str) -> list[int]:
    return [ord(c) + 100 for c in text]


def test_cuts_round_trip_for_both_orders() -> None:
    text = stdlib_files(1)[0].read_text(encoding="utf-8")
    rng = random.Random(0)
    modes = set()
    for _ in range(200):
        split = fim_split(text, rng, fim_rate=1.0, spm_rate=0.5)
        assert split.document == text
        modes.add(split.mode)
    assert modes == {"psm", "spm"}


def test_rates_are_respected() -> None:
    rng = random.Random(1)
    splits = [fim_split("def f():\n    return 1\n", rng) for _ in range(2000)]
    fim = [s for s in splits if s.mode != "none"]
    assert 0.45 < len(fim) / len(splits) < 0.55
    assert 0.43 < sum(s.mode == "spm" for s in fim) / len(fim) < 0.57
    assert all(s.document == "def f():\n    return 1\n" for s in splits)


def test_psm_layout() -> None:
    ids = fim_encode(FimSplit("psm", "ab", "cd", "ef"), _encode, IDS)
    assert ids == [1, *_encode("ab"), 3, *_encode("ef"), 2, *_encode("cd")]


def test_spm_layout() -> None:
    ids = fim_encode(FimSplit("spm", "ab", "cd", "ef"), _encode, IDS)
    assert ids == [1, 3, *_encode("ef"), 2, *_encode("ab"), *_encode("cd")]


def test_plain_document_is_unchanged() -> None:
    assert fim_encode(FimSplit("none", "abc", "", ""), _encode, IDS) == _encode("abc")
