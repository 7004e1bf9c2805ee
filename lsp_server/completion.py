"""Inline completion, the server's half: from an LSP cursor to the engine's typed request and back.

A keystroke's path (the engine's half is described in ``engine.service``):
``handlers_completion`` starts the document's request on the ``CompletionService`` (which stops
the older one) and calls ``run_completion``, which splits the document at the cursor (UTF-16
positions), fetches snippets of other files from the workspace index, sends one
``engine.types.CompletionRequest`` with the whole text around the cursor (the engine budgets it),
checks each completion against the attribution index (a copied completion is suppressed or
marked by the ``stackcoder.provenance.policy`` setting) and places the rest at the cursor.

``warm_completion`` builds the same requests for a cursor that has come to rest, before any
keystroke there (``stackcoder/warmCursor``), so the engine computes them in idle time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from lsprotocol import types

from attribution.review import has_incompatible
from engine.postprocess import BLOCK_OPENERS
from engine.types import Completion, CompletionRequest, Snippet
from lsp_server.documents import UTF16, CodeUnits, offset_at, position_at
from lsp_server.settings import CompletionSettings, ProvenanceSettings

if TYPE_CHECKING:
    from attribution.report import Report
    from engine.generation import CancelToken
    from lsp_server.workspace_index import Hit, WorkspaceIndex

__all__ = [
    "InlineRequest",
    "CompletionChoice",
    "CompletionOutcome",
    "PreparedRequest",
    "prepare_request",
    "warm_completion",
    "context_query",
    "run_completion",
    "to_inline_list",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CONTEXT_QUERY_LINES = 30  # lines before the cursor line that form the retrieval query
SNIPPET_LIMIT = 3
PROVENANCE_LEAD_LINES = 5  # lines of the prefix checked together with the completion
INVOKED_CHOICES = 3  # choices generated when the user asks explicitly
BINARY_PROBE_CHARS = 4096  # a NUL this close to the cursor means the document is not text


class RunBlocking(Protocol):
    """Runs a blocking function off the event loop (retrieval, the provenance check)."""

    def __call__(self, fn: Callable[[], T]) -> Awaitable[T]: ...


# Sends a request to the engine (``CompletionService.complete``, or its cache alone).
Generate = Callable[[CompletionRequest, "CancelToken"], Awaitable[Completion]]
# The attribution report of a text, read for the document's project.
AttributionQuery = Callable[[str], "Report"]


@dataclass(frozen=True)
class InlineRequest:
    """Everything one inline completion needs, captured when the LSP request arrives."""

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
    report: Report | None = None  # the attribution report when the completion matched the corpus


@dataclass
class CompletionOutcome:
    """The result of one request."""

    choices: list[CompletionChoice] = field(default_factory=list)
    cancelled: bool = False
    cached: bool = False
    suppressed: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


def context_query(prefix: str) -> str:
    """The retrieval query: the complete lines before the cursor line (stable while a line is typed)."""
    head = prefix[: prefix.rfind("\n") + 1]
    lines = head.splitlines(keepends=True)
    return "".join(lines[-CONTEXT_QUERY_LINES:])


def _snippets(index: WorkspaceIndex, req: InlineRequest, prefix: str) -> list[Snippet]:
    query = context_query(prefix)
    if not query.strip():
        return []
    return as_snippets(index, index.search(query, exclude_path=req.path, limit=SNIPPET_LIMIT, wait=False))


def _cached_snippets(index: WorkspaceIndex, req: InlineRequest, prefix: str) -> list[Snippet] | None:
    """The snippets when the index already holds this query's hits (no thread hop), else None."""
    query = context_query(prefix)
    if not query.strip():
        return []
    hits = index.peek(query, exclude_path=req.path, limit=SNIPPET_LIMIT)
    return None if hits is None else as_snippets(index, hits)


def as_snippets(index: WorkspaceIndex, hits: list[Hit]) -> list[Snippet]:
    """Search hits as the engine's snippets, their paths relative to the workspace root."""
    out = []
    for hit in hits:
        path = hit.chunk.path
        for root in index.roots:
            try:
                path = str(Path(path).relative_to(root))
                break
            except ValueError:
                continue
        out.append(Snippet(path=path, text=hit.chunk.text, score=float(hit.score)))
    return out


def _flagged(report: Report, first_completion_line: int) -> bool:
    """Whether a report says the completion itself (not only the lines before it) was copied."""
    if report.verdict != "copied":
        return False
    return any(
        match.kind in ("exact", "near") and match.query_end_line >= first_completion_line
        for match in report.matches
    )


@dataclass
class PreparedRequest:
    """The engine's request for an inline request, and where its suggestion goes."""

    request: CompletionRequest
    start_offset: int  # where the inserted text starts (the selected item's start, else the cursor)
    end_offset: int
    lead: str  # text of the selected completion item, kept at the start of the suggestion


async def prepare_request(
    req: InlineRequest,
    settings: CompletionSettings,
    *,
    run_blocking: RunBlocking,
    index: WorkspaceIndex | None = None,
    timings_ms: dict[str, float] | None = None,
) -> PreparedRequest | None:
    """Split the document at the cursor, fetch cross-file snippets and build the engine's request
    (one choice, or several when the user asked explicitly); None when the text near the cursor
    is binary."""
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
    if "\x00" in prefix[-BINARY_PROBE_CHARS:] or "\x00" in suffix[:BINARY_PROBE_CHARS]:
        return None  # binary content: nothing sensible to complete

    t0 = time.perf_counter()
    snippets: list[Snippet] = []
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
    request = CompletionRequest(
        document=req.uri,
        prefix=prefix,
        suffix=suffix,
        snippets=tuple(snippets),
        repo_name=req.repo_name,
        path=req.relative_path,
        choices=INVOKED_CHOICES if req.invoked else 1,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
    )
    return PreparedRequest(request, start_offset, end_offset, lead)


def _line_break_request(req: InlineRequest) -> InlineRequest | None:
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
    req: InlineRequest,
    settings: CompletionSettings,
    *,
    warm: Callable[[list[CompletionRequest]], int],
    run_blocking: RunBlocking,
    index: WorkspaceIndex | None = None,
) -> int:
    """Queue the completions the first keystroke at a resting cursor may ask for, with exactly
    the requests it would send (``warm``: the service's ``warm``): after Enter when the cursor is
    at the end of a line of code, and at the cursor. That keystroke then finds its answer in the
    cache or its prompt's head processed. Returns how many were queued."""
    inline_requests = [r for r in (_line_break_request(req), req) if r is not None]
    requests = []
    for inline_request in inline_requests:
        prepared = await prepare_request(inline_request, settings, run_blocking=run_blocking, index=index)
        if prepared is not None:
            requests.append(prepared.request)
    return warm(requests) if requests else 0


async def run_completion(
    req: InlineRequest,
    settings: CompletionSettings,
    provenance: ProvenanceSettings,
    *,
    cancel: CancelToken,
    generate: Generate,
    run_blocking: RunBlocking,
    index: WorkspaceIndex | None = None,
    attribution_query: AttributionQuery | None = None,
) -> CompletionOutcome:
    """Generate, check and place the completions of one request.

    ``generate(request, cancel)`` asks the engine (``CompletionService.complete``, which drops
    superseded requests); ``run_blocking(fn)`` runs retrieval and the provenance check off the
    event loop.
    """
    out = CompletionOutcome()
    if cancel.cancelled:
        out.cancelled = True
        return out
    prepared = await prepare_request(
        req, settings, run_blocking=run_blocking, index=index, timings_ms=out.timings_ms
    )
    if prepared is None:
        return out
    if cancel.cancelled:
        out.cancelled = True
        return out
    text, prefix, lead = req.text, prepared.request.prefix, prepared.lead

    t1 = time.perf_counter()
    completion = await generate(prepared.request, cancel)
    out.timings_ms["generate"] = (time.perf_counter() - t1) * 1000
    out.cached = completion.cached
    if completion.cancelled or cancel.cancelled:
        out.cancelled = True
        return out

    texts = list(dict.fromkeys(choice for choice in (completion.choices or [completion.text]) if choice))
    rng = types.Range(
        start=position_at(text, prepared.start_offset, req.units),
        end=position_at(text, prepared.end_offset, req.units),
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
        arg: dict[str, object] = {
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
