"""The text an inline completion request hands the engine: long documents are cut where typing
does not move the cut."""

from __future__ import annotations

from itertools import pairwise
from types import SimpleNamespace

from lsprotocol import types

from lsp_server.completion import PREFIX_CUT_STEP, CompletionRequest, run_completion, trimmed_prefix
from lsp_server.settings import CompletionSettings, ProvenanceSettings

LONG = "".join(f"value_{i} = compute({i}, scale=2)\n" for i in range(1500))  # ~45k characters


def test_a_short_prefix_is_kept_whole() -> None:
    assert trimmed_prefix("x = 1\ny = ", 100) == "x = 1\ny = "


def test_a_long_prefix_keeps_at_least_the_budget_from_a_line_start() -> None:
    for budget in (1000, 5000, 9216):
        kept = trimmed_prefix(LONG, budget)
        assert len(kept) >= budget and LONG.endswith(kept)
        assert len(kept) < budget + PREFIX_CUT_STEP + 40
        assert LONG[len(LONG) - len(kept) - 1] == "\n"  # starts a line


def test_typing_extends_the_trimmed_prefix_as_it_extends_the_document() -> None:
    budget = 9216
    typed = "total = value_1 + value_2\nprint(total)\n"
    kept = [trimmed_prefix(LONG + typed[:i], budget) for i in range(len(typed) + 1)]
    assert all(after == before + typed[i] for i, (before, after) in enumerate(pairwise(kept)))


def test_a_line_without_breaks_is_cut_at_the_step() -> None:
    minified = "a=1;" * 10_000
    kept = trimmed_prefix(minified, 4000)
    assert len(kept) >= 4000 and (len(minified) - len(kept)) % PREFIX_CUT_STEP == 0


async def test_consecutive_keystrokes_in_a_long_document_give_extending_prefixes() -> None:
    seen: list[str] = []

    async def generate(prefix, suffix, **kwargs):
        seen.append(prefix)
        return SimpleNamespace(text="", choices=[""], cached=False, cancelled=False)

    async def run_blocking(fn):
        return fn()

    settings = CompletionSettings()
    for typed in ("t", "to", "tot"):
        text = LONG + typed + "\n\nprint('done')\n"
        line = LONG.count("\n")
        request = CompletionRequest(
            request_id="1",
            uri="file:///long.py",
            text=text,
            position=types.Position(line=line, character=len(typed)),
            invoked=False,
        )
        await run_completion(
            request,
            settings,
            ProvenanceSettings(enabled=False),
            cancel=SimpleNamespace(cancelled=False),
            generate=generate,
            run_blocking=run_blocking,
        )
    assert len(seen) == 3 and len(seen[0]) < len(LONG)
    assert seen[1] == seen[0] + "o" and seen[2] == seen[1] + "t"
