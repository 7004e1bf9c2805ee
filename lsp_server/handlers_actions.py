"""Code actions and commands: infill, explain, chat, provenance checks, hover and status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from lsp_server import chat, explain, infill, protocol, provenance
from lsp_server.app import StackCoderServer, publish_findings, request_failed, server
from lsp_server.errors import InvalidParamsError, ServerError
from lsp_server.streaming import answer_result, stream_answer

log = logging.getLogger(__name__)


# ---- code actions and commands -------------------------------------------------------------------


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.Source]
    ),
)
def on_code_action(ls: StackCoderServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Offer infill, explain and provenance check on a non-empty selection (or a <FILL_HERE> line)."""
    rng = params.range
    uri = params.text_document.uri
    doc = ls.document(uri)
    if doc is None:
        return []
    empty = (rng.start.line, rng.start.character) == (rng.end.line, rng.end.character)
    args = [uri, protocol.to_plain(rng)]
    actions = []
    for command, title in protocol.COMMANDS.items():
        if empty and command != protocol.CMD_INFILL:
            continue
        if empty and infill.FILL_MARKER not in doc.source:
            continue
        kind = (
            types.CodeActionKind.RefactorRewrite
            if command == protocol.CMD_INFILL
            else types.CodeActionKind.Source
        )
        actions.append(
            types.CodeAction(
                title=title, kind=kind, command=types.Command(title=title, command=command, arguments=args)
            )
        )
    return actions


@server.command(protocol.CMD_INFILL)
async def on_infill(ls: StackCoderServer, *args: Any) -> dict[str, Any]:
    """Fill the selection (or its <FILL_HERE> marker) and apply it as a workspace edit."""
    try:
        uri, rng = protocol.parse_uri_range(list(args))
        text, version, _lang = ls.open_text(uri)
        model = ls.models.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    site = infill.infill_site(text, rng, ls.units)
    repo, rel, _path = ls.repo_and_path(uri)
    with ls.models.cancel_token() as cancel:
        try:
            filled = await ls.models.run(
                lambda: infill.run_infill(
                    model, site, ls.settings_for(uri).completion, cancel, repo_name=repo, path=rel
                )
            )
        except asyncio.CancelledError:
            cancel.cancel()
            raise
    edit = infill.infill_edit(uri, version, site, filled)
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=edit, label="StackCoder infill")
    )
    return {
        "text": filled,
        "applied": bool(getattr(result, "applied", False)),
        "range": protocol.to_plain(site.range),
    }


@server.command(protocol.CMD_EXPLAIN)
async def on_explain_command(ls: StackCoderServer, *args: Any) -> dict[str, str]:
    """Explain the selection; the text is returned (the client shows it)."""
    try:
        uri, rng = protocol.parse_uri_range(list(args))
    except ServerError as exc:
        raise request_failed(exc) from exc
    return await _explain(ls, protocol.ExplainParams(uri=uri, range=rng))


@server.command(protocol.CMD_CHECK_PROVENANCE)
async def on_check_provenance(ls: StackCoderServer, *args: Any) -> dict[str, Any]:
    """Check the selection against the attribution index; publish diagnostics and return the report."""
    try:
        uri, rng = protocol.parse_uri_range(list(args))
        text, _version, _lang = ls.open_text(uri)
        ls.provenance.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    start = (
        rng.start if (rng.start.line, rng.start.character) <= (rng.end.line, rng.end.character) else rng.end
    )
    end = rng.end if start is rng.start else rng.start
    from lsp_server.documents import offset_at

    a, b = offset_at(text, start, ls.units), offset_at(text, end, ls.units)
    a = text.rfind("\n", 0, a) + 1  # whole lines, so report lines map to document lines
    selection = text[a:b]
    first_line = text.count("\n", 0, a)
    report = await asyncio.get_running_loop().run_in_executor(None, ls.provenance.query, selection)
    lengths = [ls.units.count(line) for line in selection.split("\n")]
    findings = await asyncio.get_running_loop().run_in_executor(
        None, provenance.findings_for, ls.provenance, report, first_line, lengths
    )
    publish_findings(ls, uri, findings)
    return report.to_dict()


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: StackCoderServer, params: types.HoverParams) -> types.Hover | None:
    """Show the matching source over a provenance finding."""
    return provenance.hover_for(ls.provenance.findings.get(params.text_document.uri, []), params.position)


# ---- custom requests -----------------------------------------------------------------------------


async def _explain(ls: StackCoderServer, req: protocol.ExplainParams) -> dict[str, str]:
    try:
        text, _version, lang = ls.open_text(req.uri)
        model = ls.models.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    from lsp_server.documents import offset_at

    a, b = sorted((offset_at(text, req.range.start, ls.units), offset_at(text, req.range.end, ls.units)))
    code = text[a:b]
    if not code.strip():
        raise request_failed(InvalidParamsError("The selection is empty; select the code to explain."))
    with ls.models.cancel_token() as token:
        answer = await stream_answer(
            ls.models.run,
            lambda cancel: explain.explain_pieces(model, code, lang, ls.settings_for(req.uri).chat, cancel),
            ls.progress,
            req.partial_result_token,
            token,
        )
    return answer_result(answer)


@server.feature(protocol.EXPLAIN)
async def on_explain(ls: StackCoderServer, params: Any) -> dict[str, str]:
    """`stackcoder/explain`: explain a range, streaming deltas through $/progress."""
    try:
        req = protocol.parse_explain(protocol.to_plain(params))
    except ServerError as exc:
        raise request_failed(exc) from exc
    return await _explain(ls, req)


@server.feature(protocol.CHAT)
async def on_chat(ls: StackCoderServer, params: Any) -> dict[str, str]:
    """`stackcoder/chat`: answer a conversation with the editor's and the workspace's context."""
    try:
        req = protocol.parse_chat(protocol.to_plain(params))
        model = ls.models.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    chat_settings = ls.settings_for(req.context.uri).chat if req.context.uri else ls.settings.chat
    context = await asyncio.get_running_loop().run_in_executor(None, chat.chat_context, req, ls.context_index)
    with ls.models.cancel_token() as token:
        answer = await stream_answer(
            ls.models.run,
            lambda cancel: chat.chat_pieces(model, req, context, chat_settings, cancel),
            ls.progress,
            req.partial_result_token,
            token,
        )
    return answer_result(answer)


@server.feature(protocol.ATTRIBUTION)
async def on_attribution(ls: StackCoderServer, params: Any) -> dict[str, Any]:
    """`stackcoder/attribution`: the attribution report of a text."""
    try:
        text = protocol.parse_attribution(protocol.to_plain(params))
        ls.provenance.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    report = await asyncio.get_running_loop().run_in_executor(None, ls.provenance.query, text)
    return report.to_dict()


@server.feature(protocol.STATUS)
def on_status(ls: StackCoderServer, params: Any) -> dict[str, Any]:
    """`stackcoder/status`: what is loaded and recent latencies (plus the workspace index's state)."""
    result = ls.status.to_json()
    scheduler = ls.models.scheduler
    result["engine"] = scheduler.counters() if scheduler is not None else None
    index = ls.context_index
    result["context"] = (
        {"files": index.file_count, "chunks": index.chunk_count, "ready": index.ready, "error": index.error}
        if index is not None
        else None
    )
    return result
