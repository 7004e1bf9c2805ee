"""The text an inline completion request hands the engine: the whole text around the cursor, so
that typing extends the request's prefix exactly as it extends the document (the engine alone
bounds it to its token budget, ``engine.budget.reachable_text``)."""

from __future__ import annotations

from lsprotocol import types

from engine.types import Completion, CompletionRequest
from lsp_server.completion import InlineRequest, run_completion
from lsp_server.settings import CompletionSettings, ProvenanceSettings

LONG = "".join(f"value_{i} = compute({i}, scale=2)\n" for i in range(1500))  # ~45k characters


async def test_consecutive_keystrokes_in_a_long_document_give_extending_prefixes() -> None:
    from engine.generation import CancelToken

    seen: list[CompletionRequest] = []

    async def generate(request: CompletionRequest, cancel: CancelToken) -> Completion:
        seen.append(request)
        return Completion(text="", model="recorded", latency_ms=0.0, choices=[""])

    async def run_blocking(fn):
        return fn()

    settings = CompletionSettings()
    for typed in ("t", "to", "tot"):
        text = LONG + typed + "\n\nprint('done')\n"
        line = LONG.count("\n")
        request = InlineRequest(
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
            cancel=CancelToken(),
            generate=generate,
            run_blocking=run_blocking,
        )
    assert [r.prefix for r in seen] == [LONG + "t", LONG + "to", LONG + "tot"]
    assert all(r.suffix == "\n\nprint('done')\n" and r.document == "file:///long.py" for r in seen)
    assert all(r.choices == 1 and r.max_new_tokens == settings.max_new_tokens for r in seen)


async def test_an_explicit_request_asks_for_several_choices() -> None:
    from engine.generation import CancelToken

    seen: list[CompletionRequest] = []

    async def generate(request: CompletionRequest, cancel: CancelToken) -> Completion:
        seen.append(request)
        return Completion(text="a", model="recorded", latency_ms=0.0, choices=["a", "b", "a", ""])

    async def run_blocking(fn):
        return fn()

    request = InlineRequest(
        request_id="1",
        uri="file:///a.py",
        text="x = ",
        position=types.Position(line=0, character=4),
        invoked=True,
    )
    outcome = await run_completion(
        request,
        CompletionSettings(temperature=0.1),
        ProvenanceSettings(enabled=False),
        cancel=CancelToken(),
        generate=generate,
        run_blocking=run_blocking,
    )
    assert seen[0].choices == 3 and seen[0].temperature == 0.1  # the engine heats it for choices
    assert [c.insert_text for c in outcome.choices] == ["a", "b"]
