"""Inline completion: FIM ghost text at the cursor (`textDocument/inlineCompletion`).

One request = split the document at the cursor (UTF-16 positions), fetch cross-file snippets from
the workspace index, ask the engine for a FIM completion (served from its typed-through cache
when the user typed what was suggested), then check the completion against the attribution
index within the same request: a copied completion is suppressed or marked by the
``stackcoder.provenance.policy`` setting. A newer request for the same document cancels the
older one (its generation stops within one decoding step).

``warm_completion`` builds the same prompts for a cursor that has come to rest, before any
keystroke there (``stackcoder/warmCursor``), so the engine computes them in idle time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lsprotocol import types

from attribution.review import has_incompatible
from engine.postprocess import BLOCK_OPENERS
from lsp_server.documents import UTF16, CodeUnits, offset_at, position_at
from lsp_server.settings import CompletionSettings, ProvenanceSettings

__all__ = [
    "CompletionRequest",
    "CompletionChoice",
    "CompletionOutcome",
    "PreparedPrompt",
    "prepare_prompt",
    "generation_options",
    "warm_completion",
    "context_query",
    "trimmed_prefix",
    "run_completion",
    "to_inline_list",
]

log = logging.getLogger(__name__)

CONTEXT_QUERY_LINES = 30  # lines before the cursor line that form the retrieval query
SNIPPET_LIMIT = 3
PROVENANCE_LEAD_LINES = 5  # lines of the prefix checked together with the completion
INVOKED_CHOICES = 3  # choices generated when the user asks explicitly
INVOKED_TEMPERATURE = 0.6  # sampling temperature for several choices
CHARS_PER_TOKEN = 6  # generous bound: prefix/suffix are cut to maxPromptTokens * this many characters
BINARY_PROBE_CHARS = 4096  # a NUL this close to the cursor means the document is not text
PREFIX_CUT_STEP = 4096  # a long prefix is cut at a point that moves in steps of this many characters


@dataclass(frozen=True)
class CompletionRequest:
    """Everything one inline completion needs, captured when the request arrives."""

    request_id: str
    uri: str
    text: str  # the document's text at request time
    position: types.Position
    invoked: bool
    selected_range: types.Range | None = None
    selected_text: str = ""
    path: str | None = None  # file-system path of the document
    repo_name: str | None = None
    relative_path: str | None = None
    units: CodeUnits = UTF16


@dataclass
class CompletionChoice:
    """One completion to show: what to insert over which range, and its provenance."""

    insert_text: str
    range: types.Range
    report: Any | None = None  # attribution Report when the completion matched the corpus


@dataclass
class CompletionOutcome:
    """The result of one request."""

    choices: list[CompletionChoice] = field(default_factory=list)
    cancelled: bool = False
    cached: bool = False
    suppressed: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


def trimmed_prefix(prefix: str, budget: int) -> str:
    """The end of ``prefix``: at least its last ``budget`` characters, cut at a line start that
    stays put while the user types (it moves in steps of ``PREFIX_CUT_STEP`` characters).

    Typing then extends the trimmed prefix exactly as it extends the document, which is what the
    engine's typed-through cache and its cached prompt heads key on; a cut at a fixed distance
    from the cursor would move with every keystroke."""
    excess = len(prefix) - budget
    if excess <= 0:
        return prefix
    cut = excess // PREFIX_CUT_STEP * PREFIX_CUT_STEP
    line_start = prefix.find("\n", cut, excess) + 1
    return prefix[line_start or cut :]


def context_query(prefix: str) -> str:
    """The retrieval query: the complete lines before the cursor line (stable while a line is typed)."""
    head = prefix[: prefix.rfind("\n") + 1]
    lines = head.splitlines(keepends=True)
    return "".join(lines[-CONTEXT_QUERY_LINES:])


def _snippets(index: Any, req: CompletionRequest, prefix: str) -> list[Any]:
    query = context_query(prefix)
    if not query.strip():
        return []
    return _as_snippets(index, index.search(query, exclude_path=req.path, limit=SNIPPET_LIMIT, wait=False))


def _cached_snippets(index: Any, req: CompletionRequest, prefix: str) -> list[Any] | None:
    """The snippets when the index already holds this query's hits (no thread hop), else None."""
    peek = getattr(index, "peek", None)
    if peek is None:
        return None
    query = context_query(prefix)
    if not query.strip():
        return []
    hits = peek(query, exclude_path=req.path, limit=SNIPPET_LIMIT)
    return None if hits is None else _as_snippets(index, hits)


def _as_snippets(index: Any, hits: list[Any]) -> list[Any]:
    from engine.types import Snippet

    out = []
    for hit in hits:
        path = hit.chunk.path
        for root in getattr(index, "roots", []):
            try:
                path = str(Path(path).relative_to(root))
                break
            except ValueError:
                continue
        out.append(Snippet(path=path, text=hit.chunk.text, score=float(hit.score)))
    return out


def _flagged(report: Any, first_completion_line: int) -> bool:
    """Whether a report says the completion itself (not only the lines before it) was copied."""
    if getattr(report, "verdict", None) != "copied":
        return False
    for match in report.matches:
        kind = getattr(match, "kind", None) or (match.get("kind") if isinstance(match, dict) else None)
        end = getattr(match, "query_end_line", None)
        if end is None and isinstance(match, dict):
            end = match.get("query_end_line")
        if kind in ("exact", "near") and (end is None or int(end) >= first_completion_line):
            return True
    return False


@dataclass
class PreparedPrompt:
    """The text around the cursor as the engine gets it, and where a suggestion goes."""

    prefix: str
    suffix: str
    snippets: list[Any]
    start_offset: int  # where the inserted text starts (the selected item's start, else the cursor)
    end_offset: int
    lead: str  # text of the selected completion item, kept at the start of the suggestion


async def prepare_prompt(
    req: CompletionRequest,
    settings: CompletionSettings,
    *,
    run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]],
    index: Any | None = None,
    timings_ms: dict[str, float] | None = None,
) -> PreparedPrompt | None:
    """Split the document at the cursor, bound the text's size and fetch cross-file snippets;
    None when the text near the cursor is binary."""
    text = req.text
    offset = offset_at(text, req.position, req.units)
    start_offset = offset
    lead = ""
    if req.selected_range is not None:
        start_offset = min(offset_at(text, req.selected_range.start, req.units), offset)
        end_offset = max(offset_at(text, req.selected_range.end, req.units), offset)
        lead = req.selected_text
        prefix, suffix = text[:start_offset] + lead, text[end_offset:]
    else:
        end_offset = offset
        prefix, suffix = text[:offset], text[offset:]

    budget = settings.max_prompt_tokens * CHARS_PER_TOKEN
    # the engine budgets tokens; this bounds the work
    prefix, suffix = trimmed_prefix(prefix, budget), suffix[: budget // 2]
    if "\x00" in prefix[-BINARY_PROBE_CHARS:] or "\x00" in suffix[:BINARY_PROBE_CHARS]:
        return None  # binary content: nothing sensible to complete

    t0 = time.perf_counter()
    snippets: list[Any] = []
    if index is not None and settings.cross_file_context:
        try:
            cached = _cached_snippets(index, req, prefix)
            snippets = (
                cached if cached is not None else await run_blocking(lambda: _snippets(index, req, prefix))
            )
        except Exception:
            log.exception("[%s] workspace retrieval failed", req.request_id)
        if timings_ms is not None:
            timings_ms["retrieval"] = (time.perf_counter() - t0) * 1000
    return PreparedPrompt(prefix, suffix, snippets, start_offset, end_offset, lead)


def generation_options(
    req: CompletionRequest, settings: CompletionSettings, prompt: PreparedPrompt
) -> dict[str, Any]:
    """Keyword arguments of ``CodeModel.complete`` for this request (one choice, or several when
    the user asked explicitly)."""
    n = INVOKED_CHOICES if req.invoked else 1
    return {
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature if n == 1 else max(settings.temperature, INVOKED_TEMPERATURE),
        "snippets": tuple(prompt.snippets),
        "repo_name": req.repo_name,
        "path": req.relative_path,
        "use_cache": True,
        "mode": "auto",
        "n": n,
    }


def _line_break_request(req: CompletionRequest) -> CompletionRequest | None:
    """The request after Enter at ``req``'s cursor, when it rests at the end of a line of code:
    the line break and the indentation an editor would insert; None elsewhere."""
    text = req.text
    offset = offset_at(text, req.position, req.units)
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    before, after = text[line_start:offset], text[offset : len(text) if line_end < 0 else line_end]
    if not before.strip() or after.strip():
        return None
    indent = before[: len(before) - len(before.lstrip())]
    if before.rstrip().endswith(BLOCK_OPENERS):  # an editor indents the next line
        indent += "\t" if indent.startswith("\t") else "    "
    insert = "\n" + indent
    position = types.Position(line=req.position.line + 1, character=req.units.count(indent))
    return replace(req, text=text[:offset] + insert + text[offset:], position=position)


async def warm_completion(
    req: CompletionRequest,
    settings: CompletionSettings,
    *,
    warm: Callable[..., int],
    run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]],
    index: Any | None = None,
) -> int:
    """Queue the completions the first keystroke at a resting cursor may ask for, with exactly
    the prompts it would send (``warm(prompts)``, the scheduler's ``warm``): after
    Enter when the cursor is at the end of a line of code, and at the cursor. That keystroke then
    finds its answer in the cache or its prompt's head processed. Returns how many were queued."""
    requests = [r for r in (_line_break_request(req), req) if r is not None]
    prompts = []
    for request in requests:
        prompt = await prepare_prompt(request, settings, run_blocking=run_blocking, index=index)
        if prompt is not None:
            prompts.append((prompt.prefix, prompt.suffix, generation_options(request, settings, prompt)))
    return warm(prompts) if prompts else 0


async def run_completion(
    req: CompletionRequest,
    settings: CompletionSettings,
    provenance: ProvenanceSettings,
    *,
    cancel: Any,
    generate: Callable[..., Awaitable[Any]],
    run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]],
    index: Any | None = None,
    attribution_query: Callable[[str], Any] | None = None,
) -> CompletionOutcome:
    """Generate, check and place the completions of one request.

    ``generate(prefix, suffix, **kwargs)`` runs ``model.complete`` (through the engine's
    CompletionScheduler, which drops superseded requests); ``run_blocking(fn)`` runs retrieval and
    the provenance check off the event loop.
    """
    out = CompletionOutcome()
    if cancel.cancelled:
        out.cancelled = True
        return out
    prompt = await prepare_prompt(
        req, settings, run_blocking=run_blocking, index=index, timings_ms=out.timings_ms
    )
    if prompt is None:
        return out
    if cancel.cancelled:
        out.cancelled = True
        return out
    text, prefix, lead = req.text, prompt.prefix, prompt.lead
    start_offset, end_offset = prompt.start_offset, prompt.end_offset

    t1 = time.perf_counter()
    completion = await generate(
        prefix, prompt.suffix, cancel=cancel, **generation_options(req, settings, prompt)
    )
    out.timings_ms["generate"] = (time.perf_counter() - t1) * 1000
    out.cached = bool(getattr(completion, "cached", False))
    if getattr(completion, "cancelled", False) or cancel.cancelled:
        out.cancelled = True
        return out

    texts: list[str] = []
    for choice in list(getattr(completion, "choices", None) or [completion.text]):
        if choice and choice not in texts:
            texts.append(choice)
    rng = types.Range(
        start=position_at(text, start_offset, req.units), end=position_at(text, end_offset, req.units)
    )
    t2 = time.perf_counter()
    lead_lines = prefix.splitlines(keepends=True)[-PROVENANCE_LEAD_LINES:]
    lead_text = "".join(lead_lines)
    # 1-based line of the check text where the completion starts (it may continue the last prefix line)
    first_line = len(lead_lines) + (0 if lead_text and not lead_text.endswith("\n") else 1)
    for choice in texts:
        report = None
        if provenance.enabled and attribution_query is not None:
            try:
                rep = await run_blocking(lambda c=choice: attribution_query(lead_text + c))
            except Exception:
                log.exception("[%s] provenance check failed", req.request_id)
                rep = None
            if rep is not None and _flagged(rep, first_line):
                if provenance.policy == "suppress" or (
                    provenance.policy == "suppressIncompatible" and has_incompatible(rep)
                ):
                    out.suppressed += 1
                    continue
                report = rep
        out.choices.append(CompletionChoice(insert_text=lead + choice, range=rng, report=report))
    if provenance.enabled and attribution_query is not None and texts:
        out.timings_ms["provenance"] = (time.perf_counter() - t2) * 1000
    return out


def to_inline_list(outcome: CompletionOutcome, uri: str, command: str) -> types.InlineCompletionList:
    """The LSP answer: one item per choice, each reporting its acceptance through ``command``."""
    items = []
    for choice in outcome.choices:
        arg: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "uri": uri,
            "text": choice.insert_text,
            "range": {
                "start": {"line": choice.range.start.line, "character": choice.range.start.character},
                "end": {"line": choice.range.end.line, "character": choice.range.end.character},
            },
        }
        if choice.report is not None:
            arg["attribution"] = choice.report.to_dict()
        items.append(
            types.InlineCompletionItem(
                insert_text=choice.insert_text,
                range=choice.range,
                command=types.Command(title="Accept StackCoder completion", command=command, arguments=[arg]),
            )
        )
    return types.InlineCompletionList(items=items)
