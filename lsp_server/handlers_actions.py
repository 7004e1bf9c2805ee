"""Code actions and commands: infill, explain, chat, provenance checks, hover and status."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from lsprotocol import types

from lsp_server import chat, explain, infill, ownership, protocol, provenance
from lsp_server.app import StackCoderServer, publish_findings, request_failed, server
from lsp_server.errors import InvalidParamsError, ServerError
from lsp_server.streaming import answer_result, stream_answer

log = logging.getLogger(__name__)


# ---- code actions and commands -------------------------------------------------------------------


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(
        code_action_kinds=[
            types.CodeActionKind.QuickFix,
            types.CodeActionKind.RefactorRewrite,
            types.CodeActionKind.Source,
        ]
    ),
)
def on_code_action(ls: StackCoderServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Offer "this is my code" on provenance diagnostics; infill, explain and provenance check on a
    non-empty selection (or a <FILL_HERE> line)."""
    rng = params.range
    uri = params.text_document.uri
    doc = ls.document(uri)
    if doc is None:
        return []
    empty = (rng.start.line, rng.start.character) == (rng.end.line, rng.end.character)
    args = [uri, protocol.to_plain(rng)]
    actions = ownership.quick_fixes(uri, list(params.context.diagnostics or []), protocol.DIAGNOSTIC_SOURCE)
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
        service = ls.models.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    site = infill.infill_site(text, rng, ls.units)
    repo, rel, _path = ls.repo_and_path(uri)
    request = infill.infill_request(uri, site, ls.settings_for(uri).completion, repo_name=repo, path=rel)
    with ls.models.cancel_token() as cancel:
        try:
            filled = await ls.models.run(lambda: service.infill(request, cancel).text)
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
    query = ownership.reviewed(ls, uri)
    report = await asyncio.get_running_loop().run_in_executor(None, query, selection)
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
        service = ls.models.require()
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
            lambda cancel: service.chat(
                explain.explain_request(code, lang, ls.settings_for(req.uri).chat), cancel
            ),
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
    from engine.errors import GenerationError  # the engine loads with the model, not at start-up

    try:
        req = protocol.parse_chat(protocol.to_plain(params))
        service = ls.models.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    chat_settings = ls.settings_for(req.context.uri).chat if req.context.uri else ls.settings.chat
    context = await asyncio.get_running_loop().run_in_executor(None, chat.chat_context, req, ls.context_index)
    with ls.models.cancel_token() as token:
        try:
            answer = await stream_answer(
                ls.models.run,
                lambda cancel: service.chat(chat.chat_request(req, context, chat_settings), cancel),
                ls.progress,
                req.partial_result_token,
                token,
            )
        except GenerationError as exc:  # e.g. the last message alone does not fit the context window
            raise request_failed(exc) from exc
    return answer_result(answer)


@server.feature(protocol.WARM_CHAT)
async def on_warm_chat(ls: StackCoderServer, params: Any) -> None:
    """`stackcoder/warmChat`: the user is about to ask the chat about this context: process the
    head of that question's prompt (the conversation so far, the file and the selection) now, so
    that the answer begins after evaluating little more than the question."""
    try:
        req = protocol.parse_warm_chat(protocol.to_plain(params))
    except ServerError as exc:
        log.warning("ignoring %s: %s", protocol.WARM_CHAT, exc)
        return
    service = ls.models.service
    if service is None:
        return
    chat_settings = ls.settings_for(req.context.uri).chat if req.context.uri else ls.settings.chat
    head = chat.chat_context_head(req.context)
    future = service.warm_chat(chat.chat_request(req, head, chat_settings))
    future.add_done_callback(
        lambda done: log.debug(
            "chat warm-up: %s", done.exception() or f"{done.result()} prompt tokens processed"
        )
    )


@server.feature(protocol.ATTRIBUTION)
async def on_attribution(ls: StackCoderServer, params: Any) -> dict[str, Any]:
    """`stackcoder/attribution`: the attribution report of a text."""
    try:
        text, uri = protocol.parse_attribution_params(protocol.to_plain(params))
        ls.provenance.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    query = ownership.reviewed(ls, uri) if uri else ls.provenance.query
    report = await asyncio.get_running_loop().run_in_executor(None, query, text)
    return report.to_dict()


@server.command(protocol.CMD_MARK_MINE)
async def on_mark_mine(ls: StackCoderServer, *args: Any) -> dict[str, Any]:
    """Add a finding, its path or its repository to the workspace's `.stackcoder/mine.json`, then
    publish every document's findings again without those now marked as the user's own."""
    try:
        uri, scope, match = protocol.parse_mark_mine(list(args))
        rule = ownership.rule_for(scope, match)
    except (ServerError, ValueError) as exc:
        raise request_failed(exc if isinstance(exc, ServerError) else InvalidParamsError(str(exc))) from exc
    root = ownership.folder_root(ls, uri)
    if root is None:
        raise request_failed(
            InvalidParamsError(
                f"{uri} is not in a workspace folder; open its folder to keep a list of your own code, "
                "or add the repository to the stackcoder.provenance.mine setting."
            )
        )
    try:
        path, added = await asyncio.get_running_loop().run_in_executor(None, ownership.mark_mine, root, rule)
    except OSError as exc:
        raise request_failed(
            ServerError(
                f"could not write {root / ownership.MINE_FILE} ({exc}); check the folder's permissions."
            )
        ) from exc
    ls.projects.forget(root)
    for doc_uri, findings in list(ls.provenance.findings.items()):
        if ownership.folder_root(ls, doc_uri) != root:
            continue
        kept = [f for f in findings if not rule.covers(f.match)]
        if len(kept) != len(findings):
            publish_findings(ls, doc_uri, kept)
    log.info("marked as the user's own (%s): %s", scope, rule.to_json())
    return {"file": str(path), "added": added, "entry": rule.to_json(), "scope": rule.scope}


@server.command(protocol.CMD_DID_INSERT)
async def on_did_insert(ls: StackCoderServer, *args: Any) -> dict[str, Any]:
    """Code inserted from a chat answer: check it, publish its findings and log what matched."""
    try:
        inserted = protocol.parse_inserted(list(args))
        ls.provenance.require()
    except ServerError as exc:
        raise request_failed(exc) from exc
    query = ownership.reviewed(ls, inserted.uri)
    report = await asyncio.get_running_loop().run_in_executor(None, query, inserted.text)
    first_line = inserted.range.start.line
    lengths = [ls.units.count(line) for line in inserted.text.split("\n")]
    findings = await asyncio.get_running_loop().run_in_executor(
        None, provenance.findings_for, ls.provenance, report, first_line, lengths
    )
    if findings and ls.document(inserted.uri) is not None:
        publish_findings(ls, inserted.uri, ls.provenance.findings.get(inserted.uri, []) + findings)
    ownership.log_references(ls, inserted.uri, inserted.origin, first_line, inserted.text, report)
    return report.to_dict()


@server.feature(protocol.STATUS)
def on_status(ls: StackCoderServer, params: Any) -> dict[str, Any]:
    """`stackcoder/status`: what is loaded and recent latencies (plus the workspace index's state)."""
    result = ls.status.to_json()
    service = ls.models.service
    result["engine"] = dataclasses.asdict(service.counters()) if service is not None else None
    index = ls.context_index
    result["context"] = (
        {"files": index.file_count, "chunks": index.chunk_count, "ready": index.ready, "error": index.error}
        if index is not None
        else None
    )
    return result
