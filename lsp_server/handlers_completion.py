"""Inline completion (FIM ghost text) and the accept command that follows it.

Where a keystroke goes: ``on_inline_completion`` → ``_inline_completion`` starts the document's
request on the engine's ``CompletionService`` (``begin``: the document's older request stops) →
``lsp_server.completion.run_completion`` (the document at the cursor → an
``engine.types.CompletionRequest`` → ``CompletionService.complete`` → provenance check) → the
LSP answer. ``engine.service`` follows the request on into the engine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from engine.generation import CancelToken
from engine.service import CompletionService
from engine.types import Completion, CompletionRequest
from lsp_server import completion, ownership, protocol, provenance
from lsp_server.app import MAX_TRACKED_ACCEPTS, StackCoderServer, publish_findings, request_failed, server
from lsp_server.errors import InvalidParamsError

log = logging.getLogger(__name__)


# ---- inline completion ---------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def on_inline_completion(
    ls: StackCoderServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList | None:
    """FIM ghost text at the cursor; a newer request for the same document cancels this one."""
    return await _inline_completion(ls, params, cache_only=False)


@server.feature(protocol.CACHED_COMPLETION)
async def on_cached_completion(ls: StackCoderServer, params: Any) -> types.InlineCompletionList:
    """Ghost text from the completion cache alone (typed-through, prefetched or warmed up), never
    the model: no items when the cache holds nothing for the cursor."""
    try:
        parsed = protocol.parse_inline_params(protocol.to_plain(params))
    except InvalidParamsError as exc:
        raise request_failed(exc) from exc
    return await _inline_completion(ls, parsed, cache_only=True)


def _cache_only(service: CompletionService) -> completion.Generate:
    """A ``generate`` that asks the service's cache alone: a cancelled empty completion when the
    cache holds nothing for the cursor."""

    async def from_cache(request: CompletionRequest, cancel: CancelToken) -> Completion:
        hit = service.from_cache(request)
        return hit or Completion(text="", model=service.model_name, latency_ms=0.0, cancelled=True)

    return from_cache


async def _inline_completion(
    ls: StackCoderServer, params: types.InlineCompletionParams, *, cache_only: bool
) -> types.InlineCompletionList:
    start = asyncio.get_running_loop().time()
    uri = params.text_document.uri
    doc = ls.document(uri)
    settings = ls.settings_for(uri)
    if doc is None or not settings.completion.enabled:
        return types.InlineCompletionList(items=[])
    service = ls.models.service
    if service is None:
        return types.InlineCompletionList(items=[])
    # a cache-only answer is immediate: nothing to supersede, nothing for a newer request to stop
    cancel = CancelToken() if cache_only else service.begin(uri)
    selected = params.context.selected_completion_info
    req = _request(
        ls,
        str(ls.protocol.msg_id),
        uri,
        doc.source,
        params.position,
        invoked=params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked,
        selected=selected,
    )
    # the cache is keyed on the text around the cursor: a cache-only answer needs no retrieval
    index = ls.context_index if settings.completion.cross_file_context and not cache_only else None
    # read for the document's folder: its own code left out, license fit added
    query = ownership.reviewed(ls, uri) if ls.provenance.index is not None else None
    loop = asyncio.get_running_loop()
    try:
        outcome = await completion.run_completion(
            req,
            settings.completion,
            settings.provenance,
            cancel=cancel,
            generate=_cache_only(service) if cache_only else service.complete,
            run_blocking=lambda fn: loop.run_in_executor(None, fn),
            index=index,
            attribution_query=query,
        )
    except asyncio.CancelledError:
        cancel.cancel()
        raise
    except Exception as exc:
        log.exception("[%s] inline completion failed", req.request_id)
        ls.tell_once(f"completion:{type(exc).__name__}", f"completion failed ({exc}).")
        return types.InlineCompletionList(items=[])
    finally:
        if not cache_only:
            service.end(uri, cancel)
    if outcome.cancelled:
        return types.InlineCompletionList(items=[])
    elapsed = (asyncio.get_running_loop().time() - start) * 1000
    ls.status.latency.add(elapsed)
    ls.status.add_stages(outcome.timings_ms)
    log.debug(
        "[%s] %scompletion at %s:%d:%d %.1f ms %s cached=%s",
        req.request_id,
        "cache-only " if cache_only else "",
        uri.rsplit("/", 1)[-1],
        params.position.line,
        params.position.character,
        elapsed,
        outcome.timings_ms,
        outcome.cached,
    )
    result = completion.to_inline_list(outcome, uri, protocol.CMD_DID_ACCEPT)
    ls.status.shown += len(result.items)
    for item, choice in zip(result.items, outcome.choices, strict=True):
        if choice.report is not None and item.command and item.command.arguments:
            ls.offered[item.command.arguments[0]["id"]] = choice.report
            while len(ls.offered) > MAX_TRACKED_ACCEPTS:
                ls.offered.popitem(last=False)
    return result


def _request(
    ls: StackCoderServer,
    request_id: str,
    uri: str,
    text: str,
    position: types.Position,
    *,
    invoked: bool = False,
    selected: types.SelectedCompletionInfo | None = None,
) -> completion.InlineRequest:
    """An inline request at ``position`` of the document ``uri`` whose text is ``text``."""
    repo, rel, path = ls.repo_and_path(uri)
    return completion.InlineRequest(
        request_id=request_id,
        uri=uri,
        text=text,
        position=position,
        invoked=invoked,
        selected_range=selected.range if selected else None,
        selected_text=selected.text if selected else "",
        path=path,
        repo_name=repo,
        relative_path=rel,
        units=ls.units,
    )


@server.feature(protocol.WARM_CURSOR)
async def on_warm_cursor(ls: StackCoderServer, params: Any) -> None:
    """The cursor settled at a new place: compute the completion there in idle time (the prompt a
    keystroke there sends), unless a completion of the document is in flight."""
    try:
        cursor = protocol.parse_cursor(protocol.to_plain(params))
    except InvalidParamsError as exc:
        log.warning("ignoring %s: %s", protocol.WARM_CURSOR, exc)
        return
    doc = ls.document(cursor.uri)
    settings = ls.settings_for(cursor.uri).completion
    service = ls.models.service
    if doc is None or service is None or not (settings.enabled and settings.warm_on_cursor_move):
        return
    if service.busy(cursor.uri):  # the user is typing: the keystroke's own request is on its way
        return
    req = _request(ls, "warm", cursor.uri, doc.source, cursor.position)
    index = ls.context_index if settings.cross_file_context else None
    loop = asyncio.get_running_loop()
    where = f"{cursor.uri.rsplit('/', 1)[-1]}:{cursor.position.line}:{cursor.position.character}"
    try:
        queued = await completion.warm_completion(
            req,
            settings,
            warm=service.warm,
            run_blocking=lambda fn: loop.run_in_executor(None, fn),
            index=index,
        )
    except Exception as exc:  # a position past the end of the document, a closed document, ...
        log.debug("no warm-up at %s: %s", where, exc)
        return
    log.debug("warm-up at %s: %d prompt(s) queued", where, queued)


@server.command(protocol.CMD_DID_ACCEPT)
def on_accept(ls: StackCoderServer, *args: Any) -> None:
    """Count an accepted completion; a marked (copied) one gets its provenance diagnostics."""
    try:
        accepted = protocol.parse_accepted(list(args))
    except InvalidParamsError as exc:
        raise request_failed(exc) from exc
    ls.status.accepted += 1
    report = ls.offered.pop(accepted.id, None)
    if report is None or ls.document(accepted.uri) is None:
        return
    start = accepted.range.start
    lines = accepted.text.split("\n")
    end_char = (start.character if len(lines) == 1 else 0) + ls.units.count(lines[-1])
    rng = types.Range(start=start, end=types.Position(line=start.line + len(lines) - 1, character=end_char))
    findings = [
        provenance.Finding(rng, provenance.match_json(m), ls.provenance.source_text(m))
        for m in report.matches
    ]
    publish_findings(ls, accepted.uri, ls.provenance.findings.get(accepted.uri, []) + findings)
    ownership.log_references(ls, accepted.uri, "suggestion", start.line, accepted.text, report)
