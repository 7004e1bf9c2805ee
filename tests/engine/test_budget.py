"""Token-budgeted prompt fitting, counted with a real fast tokenizer (the tiny test model's)."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest

from engine.budget import fit_prompt, snippet_text
from engine.types import Snippet


@pytest.fixture(scope="module")
def count(tiny_gptbigcode_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gptbigcode_dir)
    assert tokenizer.is_fast

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids)

    return count_tokens


@pytest.fixture(scope="module")
def source() -> str:
    return (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text(encoding="utf-8")


def _split(source: str, line: int, column: int) -> tuple[str, str]:
    lines = source.splitlines(keepends=True)
    cut = sum(len(x) for x in lines[:line]) + column
    return source[:cut], source[cut:]


def _total(count, fitted) -> int:
    return count(fitted.prefix) + count(fitted.suffix) + sum(count(snippet_text(s)) for s in fitted.snippets)


def test_small_prompt_is_kept_whole(count) -> None:
    fitted = fit_prompt(count, "def f(x):\n    return ", "\n\nprint(f(1))\n", max_prompt_tokens=512)
    assert (fitted.prefix, fitted.suffix, fitted.snippets) == (
        "def f(x):\n    return ",
        "\n\nprint(f(1))\n",
        [],
    )
    assert fitted.prompt_tokens == _total(count, fitted)


def test_cut_by_whole_lines_around_the_cursor(count, source) -> None:
    prefix, suffix = _split(source, 250, 8)
    fitted = fit_prompt(count, prefix, suffix, max_prompt_tokens=300)
    assert fitted.prompt_tokens == _total(count, fitted) <= 300
    # The prefix keeps a tail of whole lines, the suffix a head of whole lines.
    assert prefix.endswith(fitted.prefix) and len(fitted.prefix) < len(prefix)
    assert prefix[: len(prefix) - len(fitted.prefix)].endswith("\n")
    assert suffix.startswith(fitted.suffix) and len(fitted.suffix) < len(suffix)
    assert fitted.suffix.endswith("\n")
    # The cursor line is whole.
    cursor_line = source.splitlines(keepends=True)[250]
    assert cursor_line in fitted.prefix[-len(cursor_line) :] + fitted.suffix
    # Default shares: the suffix gets about a quarter, the prefix the rest (no snippets).
    assert count(fitted.suffix) <= 0.25 * 300 + count(cursor_line)
    assert count(fitted.prefix) >= 0.6 * 300
    # Whole lines rarely fill the budget exactly, but nearly.
    assert fitted.prompt_tokens >= 300 - 40


def test_unused_suffix_share_goes_to_the_prefix(count, source) -> None:
    prefix = source
    fitted = fit_prompt(count, prefix, "\n", max_prompt_tokens=400)
    assert fitted.prompt_tokens <= 400
    assert count(fitted.prefix) >= 400 - 40


def test_unused_prefix_share_goes_to_the_suffix(count, source) -> None:
    fitted = fit_prompt(count, "import os\n", source, max_prompt_tokens=400)
    assert fitted.prompt_tokens <= 400
    assert fitted.prefix == "import os\n"
    assert count(fitted.suffix) >= 400 - 40


def test_snippets_get_their_share_and_are_cut_to_head_lines(count, source) -> None:
    prefix, suffix = _split(source, 300, 0)
    big = Snippet("textwrap_copy.py", source, score=0.9)
    small = Snippet("util.py", "def helper():\n    return 1\n", score=0.5)
    fitted = fit_prompt(count, prefix, suffix, [big, small], max_prompt_tokens=600)
    assert fitted.prompt_tokens == _total(count, fitted) <= 600
    assert [s.path for s in fitted.snippets] == ["textwrap_copy.py"]
    kept = fitted.snippets[0]
    assert source.startswith(kept.text) and kept.text.endswith("\n") and len(kept.text) < len(source)
    assert kept.score == 0.9
    assert count(snippet_text(kept)) <= 0.25 * 600 + 20


def test_small_snippets_are_kept_whole(count) -> None:
    snippets = [Snippet("a.py", "A = 1\n"), Snippet("b.py", "B = 2")]
    fitted = fit_prompt(count, "x = ", "\n", snippets, max_prompt_tokens=200)
    assert fitted.snippets == snippets


def test_snippets_use_the_budget_the_file_leaves(count, source) -> None:
    fitted = fit_prompt(count, "x = ", "\n", [Snippet("t.py", source)], max_prompt_tokens=300)
    assert fitted.prompt_tokens <= 300
    assert count(snippet_text(fitted.snippets[0])) >= 300 - 40


def test_zero_snippet_share_drops_snippets_when_the_file_fills_the_budget(count, source) -> None:
    prefix, suffix = _split(source, 250, 0)
    fitted = fit_prompt(
        count, prefix, suffix, [Snippet("a.py", "A = 1\n")], max_prompt_tokens=200, snippet_share=0
    )
    assert fitted.snippets == []


def test_one_line_over_budget_is_cut_inside(count) -> None:
    line = "values = [" + ", ".join(str(i) for i in range(400)) + "]"
    prefix, suffix = line[:1000], line[1000:] + "\nprint(values)\n"
    fitted = fit_prompt(count, "import os\n" + prefix, suffix, max_prompt_tokens=100)
    assert fitted.prompt_tokens == count(fitted.prefix) + count(fitted.suffix) <= 100
    assert prefix.endswith(fitted.prefix) and fitted.prefix  # the text nearest the cursor
    assert suffix.startswith(fitted.suffix)
    assert "\n" not in fitted.prefix + fitted.suffix


@pytest.mark.parametrize("budget", [16, 64, 257, 1024])
def test_never_exceeds_the_budget(count, source, budget: int) -> None:
    rng = random.Random(budget)
    lines = source.count("\n")
    snippets = [Snippet("s.py", source[:3000]), Snippet("t.py", source[5000:6000])]
    for _ in range(6):
        line = rng.randrange(lines)
        prefix, suffix = _split(source, line, rng.randrange(5))
        fitted = fit_prompt(count, prefix, suffix, snippets, max_prompt_tokens=budget)
        assert fitted.prompt_tokens == _total(count, fitted) <= budget
        assert prefix.endswith(fitted.prefix) and suffix.startswith(fitted.suffix)


def test_work_is_bounded_by_the_budget_not_the_file(count, source) -> None:
    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return count(text)

    huge = source * 40  # ~20k lines
    prefix, suffix = huge[: len(huge) // 2], huge[len(huge) // 2 :]
    fit_prompt(counting, prefix, suffix, max_prompt_tokens=256)
    assert calls < 150


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_prompt_tokens": 0}, "max_prompt_tokens"),
        ({"suffix_share": 0.8, "snippet_share": 0.5}, "sum to at most 1"),
        ({"suffix_share": -0.1}, "between 0 and 1"),
    ],
)
def test_bad_settings(count, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_prompt(count, "a", "b", **kwargs)


def test_budget_holds_even_when_joined_text_costs_more_than_its_parts() -> None:
    def superadditive(text: str) -> int:  # long texts cost extra per line: blocks under-estimate
        return len(text) + (3 * text.count("\n") if len(text) > 40 else 0)

    source = "".join(f"line_{i} = {i}\n" for i in range(300))
    prefix, suffix = source[:2000], source[2000:]
    snippets = [Snippet("a.py", source[:600])]
    for budget in (50, 300, 1000):
        fitted = fit_prompt(superadditive, prefix, suffix, snippets, max_prompt_tokens=budget)
        total = superadditive(fitted.prefix) + superadditive(fitted.suffix)
        total += sum(superadditive(snippet_text(s)) for s in fitted.snippets)
        assert fitted.prompt_tokens == total <= budget
        assert prefix.endswith(fitted.prefix) and suffix.startswith(fitted.suffix)


def test_a_cached_counter_gives_the_same_fit_with_fewer_calls(count, source) -> None:
    from engine.budget import cached_counter

    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return count(text)

    cached = cached_counter(counting)
    prefix, suffix = _split(source, 250, 4)
    first = fit_prompt(cached, prefix, suffix, max_prompt_tokens=400)
    before = calls
    # The next keystroke: only the cursor's line and the assembled texts are new.
    second = fit_prompt(cached, prefix + "x", suffix, max_prompt_tokens=400)
    assert calls - before <= 4
    assert second == fit_prompt(count, prefix + "x", suffix, max_prompt_tokens=400)
    assert first.prefix + "x" == second.prefix or second.prompt_tokens <= 400
