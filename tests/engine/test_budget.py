"""Token-budgeted prompt fitting, counted with a real fast tokenizer (the tiny test model's).

Most behaviour is checked on both ways of counting: a plain ``count_tokens`` callable (lines counted
in blocks) and the tokenizer itself (parts encoded in windows, cuts priced from token offsets).
"""

from __future__ import annotations

import functools
import itertools
import random
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.budget import (
    CURSOR_LINE_STEP,
    MAX_CHARS_PER_TOKEN,
    REACH_CUT_STEP,
    fit_prompt,
    reachable_text,
    snippet_text,
)
from engine.types import Snippet

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def tokenizer(tiny_gptbigcode_dir):
    """The test model's tokenizer, loaded with ``tokenizers`` alone (importing ``transformers`` costs
    more than all these tests; a fast ``transformers`` tokenizer wraps this same object)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tiny_gptbigcode_dir / "tokenizer.json"))


@pytest.fixture(scope="module")
def count(tokenizer):
    def count_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count_tokens


@pytest.fixture(params=["counter", "tokenizer"])
def fit(request, count, tokenizer):
    """``fit_prompt`` bound to the counter, alone or with the tokenizer."""
    if request.param == "tokenizer":
        return functools.partial(fit_prompt, count, tokenizer=tokenizer)
    return functools.partial(fit_prompt, count)


@pytest.fixture(scope="module")
def source() -> str:
    return (STDLIB / "textwrap.py").read_text(encoding="utf-8")


def _split(source: str, line: int, column: int) -> tuple[str, str]:
    lines = source.splitlines(keepends=True)
    cut = sum(len(x) for x in lines[:line]) + column
    return source[:cut], source[cut:]


def _total(count, fitted) -> int:
    return count(fitted.prefix) + count(fitted.suffix) + sum(count(snippet_text(s)) for s in fitted.snippets)


def test_small_prompt_is_kept_whole(fit, count) -> None:
    fitted = fit("def f(x):\n    return ", "\n\nprint(f(1))\n", max_prompt_tokens=512)
    assert (fitted.prefix, fitted.suffix, fitted.snippets) == (
        "def f(x):\n    return ",
        "\n\nprint(f(1))\n",
        [],
    )
    assert fitted.prompt_tokens == _total(count, fitted)


def test_cut_by_whole_lines_around_the_cursor(fit, count, source) -> None:
    prefix, suffix = _split(source, 250, 8)
    fitted = fit(prefix, suffix, max_prompt_tokens=300)
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
    # Whole lines rarely fill the budget exactly, but nearly (less the cursor line's pricing step).
    assert fitted.prompt_tokens >= 300 - 40 - CURSOR_LINE_STEP


def test_unused_suffix_share_goes_to_the_prefix(fit, count, source) -> None:
    prefix = source
    fitted = fit(prefix, "\n", max_prompt_tokens=400)
    assert fitted.prompt_tokens <= 400
    assert count(fitted.prefix) >= 400 - 40


def test_unused_prefix_share_goes_to_the_suffix(fit, count, source) -> None:
    fitted = fit("import os\n", source, max_prompt_tokens=400)
    assert fitted.prompt_tokens <= 400
    assert fitted.prefix == "import os\n"
    # Whole lines rarely fill the budget exactly (less the cursor line's pricing step).
    assert count(fitted.suffix) >= 400 - 40 - CURSOR_LINE_STEP


def test_snippets_get_their_share_and_are_cut_to_head_lines(fit, count, source) -> None:
    prefix, suffix = _split(source, 300, 0)
    big = Snippet("textwrap_copy.py", source, score=0.9)
    small = Snippet("util.py", "def helper():\n    return 1\n", score=0.5)
    fitted = fit(prefix, suffix, [big, small], max_prompt_tokens=600)
    assert fitted.prompt_tokens == _total(count, fitted) <= 600
    assert [s.path for s in fitted.snippets] == ["textwrap_copy.py"]
    kept = fitted.snippets[0]
    assert source.startswith(kept.text) and kept.text.endswith("\n") and len(kept.text) < len(source)
    assert kept.score == 0.9
    assert count(snippet_text(kept)) <= 0.25 * 600 + 20


def test_small_snippets_are_kept_whole(fit, count) -> None:
    snippets = [Snippet("a.py", "A = 1\n"), Snippet("b.py", "B = 2")]
    fitted = fit("x = ", "\n", snippets, max_prompt_tokens=200)
    assert fitted.snippets == snippets


def test_snippets_use_the_budget_the_file_leaves(fit, count, source) -> None:
    fitted = fit("x = ", "\n", [Snippet("t.py", source)], max_prompt_tokens=300)
    assert fitted.prompt_tokens <= 300
    assert count(snippet_text(fitted.snippets[0])) >= 300 - 40 - CURSOR_LINE_STEP


def test_zero_snippet_share_gives_snippets_only_what_the_file_leaves(fit, count, source) -> None:
    prefix, suffix = _split(source, 250, 0)
    snippet = Snippet("a.py", "\n".join(f"A{i} = {i}" for i in range(40)) + "\n")
    fitted = fit(prefix, suffix, [snippet], max_prompt_tokens=200, snippet_share=0)
    alone = fit(prefix, suffix, [], max_prompt_tokens=200, snippet_share=0)
    # The file keeps every line it would keep without snippets; a snippet gets only the rest.
    assert (fitted.prefix, fitted.suffix) == (alone.prefix, alone.suffix)
    assert fitted.prompt_tokens <= 200
    if fitted.snippets:
        assert len(fitted.snippets[0].text) < len(snippet.text)


def test_one_line_over_budget_is_cut_inside(fit, count) -> None:
    line = "values = [" + ", ".join(str(i) for i in range(400)) + "]"
    prefix, suffix = line[:1000], line[1000:] + "\nprint(values)\n"
    fitted = fit("import os\n" + prefix, suffix, max_prompt_tokens=100)
    assert fitted.prompt_tokens == count(fitted.prefix) + count(fitted.suffix) <= 100
    assert prefix.endswith(fitted.prefix) and fitted.prefix  # the text nearest the cursor
    assert suffix.startswith(fitted.suffix)
    assert "\n" not in fitted.prefix + fitted.suffix


@pytest.mark.parametrize("budget", [16, 64, 257, 1024])
def test_never_exceeds_the_budget(fit, count, source, budget: int) -> None:
    rng = random.Random(budget)
    lines = source.count("\n")
    snippets = [Snippet("s.py", source[:3000]), Snippet("t.py", source[5000:6000])]
    for _ in range(6):
        line = rng.randrange(lines)
        prefix, suffix = _split(source, line, rng.randrange(5))
        fitted = fit(prefix, suffix, snippets, max_prompt_tokens=budget)
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
def test_bad_settings(fit, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit("a", "b", **kwargs)


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


# --------------------------------------------------------------------------- with the tokenizer

STDLIB_FILES = ["textwrap.py", "argparse.py", "json/decoder.py", "difflib.py"]


def _random_cases(seed: int, per_file: int):
    """(source, prefix, suffix, snippets, budget) at random cursors in real standard-library files."""
    rng = random.Random(seed)
    for name in STDLIB_FILES:
        source = (STDLIB / name).read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        for _ in range(per_file):
            line = rng.randrange(len(lines))
            prefix, suffix = _split(source, line, rng.randrange(len(lines[line]) + 1))
            snippets = []
            if rng.random() < 0.5:
                start = rng.randrange(len(source) - 3000)
                snippets = [Snippet("a.py", source[start : start + 3000]), Snippet("b.py", "B = 2\n")]
            yield source, prefix, suffix, snippets, rng.choice([8, 40, 300, 1024, 1536])


def test_tokenizer_fits_at_random_cursors_keep_every_guarantee(count, tokenizer) -> None:
    for _source, prefix, suffix, snippets, budget in _random_cases(seed=7, per_file=8):
        fitted = fit_prompt(count, prefix, suffix, snippets, max_prompt_tokens=budget, tokenizer=tokenizer)
        assert fitted.prompt_tokens == _total(count, fitted) <= budget
        assert prefix.endswith(fitted.prefix) and suffix.startswith(fitted.suffix)
        head = prefix[prefix.rfind("\n") + 1 :]
        tail = suffix[: suffix.find("\n") + 1 or len(suffix)]
        if count(head) + count(tail) <= budget:  # whole lines, the cursor's line among them
            assert fitted.prefix.endswith(head) and fitted.suffix.startswith(tail)
            assert prefix[: len(prefix) - len(fitted.prefix)].endswith("\n") or fitted.prefix == prefix
            assert fitted.suffix.endswith("\n") or fitted.suffix == suffix
        for kept, given in zip(fitted.snippets, snippets, strict=False):
            assert kept.path == given.path and given.text.startswith(kept.text)
            assert kept.text == given.text or kept.text.endswith("\n")


def test_tokenizer_uses_the_budget_at_least_as_well_as_block_counting(count, tokenizer) -> None:
    by_blocks = by_offsets = 0
    for _source, prefix, suffix, snippets, budget in _random_cases(seed=11, per_file=5):
        by_blocks += fit_prompt(count, prefix, suffix, snippets, max_prompt_tokens=budget).prompt_tokens
        by_offsets += fit_prompt(
            count, prefix, suffix, snippets, max_prompt_tokens=budget, tokenizer=tokenizer
        ).prompt_tokens
    assert by_offsets >= by_blocks


def test_tokenizer_fills_a_large_budget_nearly(count, tokenizer, source) -> None:
    middle = source.rfind("\n", 0, len(source) // 2) + 1 + 8
    fitted = fit_prompt(count, source[:middle], source[middle:], max_prompt_tokens=1536, tokenizer=tokenizer)
    assert 1536 - 20 - CURSOR_LINE_STEP <= fitted.prompt_tokens == _total(count, fitted) <= 1536


def _spy_on_encoding(tokenizer, monkeypatch) -> list[int]:
    """Empty the budget's encoding cache and record the length of every text it encodes from now on."""
    from engine.budget import _encoder

    encoder = _encoder(tokenizer)
    inner = encoder.tokenizer
    encoded: list[int] = []

    class Spy:
        def encode(self, text: str, **kwargs):
            encoded.append(len(text))
            return inner.encode(text, **kwargs)

    encoder.clear()
    monkeypatch.setattr(encoder, "tokenizer", Spy())
    return encoded


def test_tokenizer_reads_only_a_window_of_a_huge_file(count, tokenizer, source, monkeypatch) -> None:
    encoded = _spy_on_encoding(tokenizer, monkeypatch)
    huge = source * 40  # ~20k lines
    middle = huge.rfind("\n", 0, len(huge) // 2) + 1
    fitted = fit_prompt(count, huge[:middle], huge[middle:], max_prompt_tokens=1536, tokenizer=tokenizer)
    kept = len(fitted.prefix) + len(fitted.suffix)
    assert fitted.prompt_tokens <= 1536
    assert sum(encoded) < 2.6 * kept  # the windows (with a margin) and the exact count, nothing more
    assert len(encoded) <= 8


def test_huge_single_line_is_cut_around_the_cursor(fit, count) -> None:
    line = "data = [" + ", ".join(f"'item{i}'" for i in range(30000)) + "]"  # ~330k characters
    middle = len(line) // 2
    prefix, suffix = "import os\n" + line[:middle], line[middle:] + "\nprint(data)\n"
    fitted = fit(prefix, suffix, [Snippet("a.py", "A = 1\n")], max_prompt_tokens=256)
    assert fitted.prompt_tokens == _total(count, fitted) <= 256
    assert fitted.prompt_tokens >= 256 - 8  # cut by characters, so nearly full
    assert prefix.endswith(fitted.prefix) and suffix.startswith(fitted.suffix)
    assert fitted.prefix and fitted.suffix and "\n" not in fitted.prefix + fitted.suffix
    assert fitted.snippets == []


def test_huge_line_away_from_the_cursor_ends_the_kept_lines(fit, count) -> None:
    huge = "table = " + "+".join(str(i) for i in range(50000)) + "\n"
    prefix = "import os\n" + huge + "def f(x):\n    return "
    suffix = "x\n\n" + huge + "print(f(1))\n"
    fitted = fit(prefix, suffix, max_prompt_tokens=300)
    assert fitted.prompt_tokens == _total(count, fitted) <= 300
    assert fitted.prefix == "def f(x):\n    return "
    assert fitted.suffix == "x\n\n"


def test_a_raw_tokenizer_with_trimmed_offsets_gives_the_same_fit(count, tokenizer, source) -> None:
    from tokenizers import Tokenizer, processors

    from engine.budget import _encoder

    raw = Tokenizer.from_str(tokenizer.to_str())
    raw.post_processor = processors.ByteLevel(trim_offsets=True)  # as StarCoder's tokenizer.json
    # Cuts are priced from where tokens really start, spaces included.
    text = source[:2000]
    untrimmed = tokenizer.encode(text, add_special_tokens=False).offsets
    assert _encoder(raw).starts(text) == [start for start, _ in untrimmed]
    prefix, suffix = _split(source, 200, 4)
    snippets = [Snippet("t.py", source[:2500])]
    with_raw = fit_prompt(count, prefix, suffix, snippets, max_prompt_tokens=500, tokenizer=raw)
    assert with_raw == fit_prompt(count, prefix, suffix, snippets, max_prompt_tokens=500, tokenizer=tokenizer)
    assert with_raw.prompt_tokens == _total(count, with_raw) <= 500


def test_a_fast_transformers_tokenizer_is_used_through_its_backend(count, tokenizer, source) -> None:
    wrapper = SimpleNamespace(backend_tokenizer=tokenizer)  # what PreTrainedTokenizerFast exposes
    prefix, suffix = _split(source, 120, 0)
    fitted = fit_prompt(count, prefix, suffix, max_prompt_tokens=300, tokenizer=wrapper)
    assert fitted == fit_prompt(count, prefix, suffix, max_prompt_tokens=300, tokenizer=tokenizer)


def test_a_tokenizer_without_offsets_is_refused(count) -> None:
    with pytest.raises(TypeError, match="fast transformers tokenizer"):
        fit_prompt(count, "a", "b", tokenizer=object())


def test_typing_on_one_line_encodes_little_but_that_line(count, tokenizer, source, monkeypatch) -> None:
    encoded = _spy_on_encoding(tokenizer, monkeypatch)
    prefix, suffix = _split(source, 250, 0)
    typed = "result = self.wrap(text) + [x"
    fits = [
        fit_prompt(count, prefix + typed[:i], suffix, max_prompt_tokens=800, tokenizer=tokenizer)
        for i in range(len(typed) + 1)
    ]
    calls_per_keystroke = (len(encoded) - 4) / len(typed)  # the first fit encodes its windows
    assert calls_per_keystroke <= 2.5  # the cursor's line and the assembled prefix, now and then a window
    monkeypatch.undo()
    for i, fitted in enumerate(fits):
        assert fitted.prompt_tokens == _total(count, fitted) <= 800
        assert fitted.prefix.endswith("\n" + typed[:i]) and suffix.startswith(fitted.suffix)


def test_typing_on_the_cursor_line_keeps_the_text_around_it_within_a_step(fit, count, source) -> None:
    """The split is priced with the cursor line rounded up to CURSOR_LINE_STEP tokens, so the lines
    kept above and below (the start of an SPM prompt, cached by the backends) change rarely."""
    start = source.index("\n", len(source) // 2) + 1
    line_end = source.index("\n", start)
    indent = source[start:line_end][: len(source[start:line_end]) - len(source[start:line_end].lstrip())]
    above, below = source[:start], source[line_end:]
    kept = set()
    typed = "result = compute_something_long(argument_one, argument_two)"
    for i in range(len(typed) + 1):
        fitted = fit(above + indent + typed[:i], below, max_prompt_tokens=300)
        assert fitted.prompt_tokens <= 300
        cut = fitted.prefix.rfind("\n") + 1
        kept.add((fitted.prefix[:cut], fitted.suffix))
    # ~60 keystrokes, ~15 tokens typed: at most two different splits, not one per token.
    assert len(kept) <= 2


# ---- the text a budget can reach (what the cache is keyed on and the prompt fitted from)

LONG = "".join(f"value_{i} = compute({i}, scale=2)\n" for i in range(3000))  # ~90k characters


def test_a_short_text_is_kept_whole() -> None:
    assert reachable_text("x = 1\ny = ", "\nz = 2\n", 16) == ("x = 1\ny = ", "\nz = 2\n")


def test_a_long_prefix_keeps_at_least_the_budgets_reach_from_a_line_start() -> None:
    for budget in (16, 64, 1536):
        reach = budget * MAX_CHARS_PER_TOKEN
        kept, suffix = reachable_text(LONG, LONG, budget)
        assert len(kept) > reach and LONG.endswith(kept)
        assert len(kept) < reach + REACH_CUT_STEP + 40
        assert LONG[len(LONG) - len(kept) - 1] == "\n"  # starts a line
        assert LONG.startswith(suffix) and len(suffix) == reach + 1


def test_typing_extends_the_kept_prefix_as_it_extends_the_document() -> None:
    typed = "total = value_1 + value_2\nprint(total)\n"
    kept = [reachable_text(LONG + typed[:i], "", 256)[0] for i in range(len(typed) + 1)]
    assert all(after == before + typed[i] for i, (before, after) in enumerate(itertools.pairwise(kept)))


def test_a_line_without_breaks_is_cut_at_the_step() -> None:
    minified = "a=1;" * 30_000
    kept, _ = reachable_text(minified, "", 64)
    assert len(kept) > 64 * MAX_CHARS_PER_TOKEN and (len(minified) - len(kept)) % REACH_CUT_STEP == 0


def test_the_fitted_prompt_is_the_same_from_the_reachable_text(count, tokenizer) -> None:
    source = (STDLIB / "textwrap.py").read_text(encoding="utf-8") * 8
    middle = len(source) // 2
    prefix, suffix = source[:middle], source[middle:]
    for budget in (64, 300):
        kept_prefix, kept_suffix = reachable_text(prefix, suffix, budget)
        assert len(kept_prefix) < len(prefix) and len(kept_suffix) < len(suffix)
        for by in (None, tokenizer):
            whole = fit_prompt(count, prefix, suffix, max_prompt_tokens=budget, tokenizer=by)
            assert (
                fit_prompt(count, kept_prefix, kept_suffix, max_prompt_tokens=budget, tokenizer=by) == whole
            )
