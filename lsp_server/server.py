"""The StackCoder language server: state on a LanguageServer subclass, thin handlers.

Each handler validates its input, then delegates to the feature module (completion, infill,
explain, chat, provenance, status). Blocking work (model loading, generation, index queries)
runs off the event loop; a missing model or index is reported once and the rest keeps working.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server import chat, completion, explain, infill, protocol, provenance
from lsp_server.documents import codec_for
from lsp_server.errors import InvalidParamsError, ServerError, SettingsError
from lsp_server.model_host import ModelHost
from lsp_server.rpc import HardenedProtocol
from lsp_server.settings import Settings, folder_of, for_folder, parse_settings
from lsp_server.status import ServerStatus
from lsp_server.streaming import stream_answer

__all__ = ["StackCoderServer", "server", "VERSION"]

log = logging.getLogger(__name__)

try:
    from importlib.metadata import version as _dist_version

    VERSION = _dist_version("stackcoder")
except Exception:  # running from a checkout that is not installed
    VERSION = "0.1.0"

REQUEST_FAILED = -32803  # LSP RequestFailed: the request was valid but could not be answered
MAX_TRACKED_ACCEPTS = 256
EMBEDDER_ENV = "STACKCODER_CONTEXT_EMBEDDER"  # "minilm" (default), "code-model" or "none" (BM25 only)


def request_failed(exc: Exception) -> JsonRpcException:
    """The JSON-RPC error for a product error (its one-sentence message)."""
    if isinstance(exc, InvalidParamsError):
        return JsonRpcInvalidParams(str(exc))
    return JsonRpcException(str(exc), code=REQUEST_FAILED)


class StackCoderServer(LanguageServer):
    """The server object holding settings, the model, the indexes and the statistics."""

    def __init__(self) -> None:
        super().__init__(
            "stackcoder",
            VERSION,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=HardenedProtocol,
        )
        self.settings = Settings()  # the client's global settings (the model section is always these)
        self.folder_settings: dict[str, Settings] = {}  # workspace folder URI -> its resolved settings
        self.folder_raw: dict[str, Any] = {}  # workspace folder URI -> its `stackcoder` section
        self.status = ServerStatus(version=VERSION)
        self.models = ModelHost(self.status.model)
        self.provenance = provenance.ProvenanceHost(self.status.index)
        self.context_index: Any | None = None
        self.pending: dict[str, Any] = {}  # uri -> CancelToken of the newest completion request
        self.shown: set[str] = set()  # user messages already shown once
        self.offered: OrderedDict[str, Any] = (
            OrderedDict()
        )  # completion id -> attribution Report of a marked item
        self.model_ready = asyncio.Event()
        self.started = False  # set once `initialized` has started the first loads
        self._background: set[asyncio.Task] = set()

    # ---- user-facing messages ----------------------------------------------------------------

    def tell_once(self, key: str, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Show ``message`` to the user once per ``key`` (and always log it)."""
        log.warning("%s", message)
        if key in self.shown:
            return
        self.shown.add(key)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"StackCoder: {message}"))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log internal errors; users see only the server's own one-sentence messages."""
        log.error("internal error (%s): %s", getattr(source, "__name__", source), error)

    def spawn(self, coro: Any) -> None:
        """Run a background task, keeping a reference until it finishes."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- settings ----------------------------------------------------------------------------

    def apply_settings(self, raw: Any, *, source: str) -> Settings:
        """Merge a settings object into the current settings; a bad value is reported and ignored."""
        try:
            new = parse_settings(protocol.to_plain(raw), self.settings)
        except SettingsError as exc:
            self.tell_once(f"settings:{exc}", str(exc), types.MessageType.Error)
            return self.settings
        old, self.settings = self.settings, new
        if self.folder_raw:
            self.resolve_folders()
        log.info("settings from %s: %s", source, new.to_json())
        if self.started:  # before `initialized`, the first load picks the settings up
            if new.model != old.model:
                self.spawn(self.load_model())
            elif new.completion != old.completion:
                self.models.set_prompt_budget(new.completion.max_prompt_tokens, new.completion.max_new_tokens)
            if new.provenance.index_path != old.provenance.index_path or (
                new.provenance.enabled and not old.provenance.enabled
            ):
                self.spawn(self.open_index())
        return new

    async def pull_configuration(self) -> None:
        """Ask the client for the `stackcoder` section, globally and for each workspace folder,
        when it supports workspace/configuration."""
        caps = self.client_capabilities.workspace
        if not (caps and caps.configuration):
            return
        folders = list((self.workspace.folders or {}).values())
        items = [types.ConfigurationItem(section="stackcoder")] + [
            types.ConfigurationItem(scope_uri=f.uri, section="stackcoder") for f in folders
        ]
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(types.ConfigurationParams(items=items)), timeout=5
            )
        except Exception as exc:
            log.warning("workspace/configuration failed: %s", exc)
            return
        result = list(result or [])
        if result and result[0] is not None:
            self.apply_settings(result[0], source="workspace/configuration")
        self.folder_raw = {
            folder.uri: protocol.to_plain(raw)
            for folder, raw in zip(folders, result[1:], strict=False)
            if raw is not None
        }
        self.resolve_folders()

    def resolve_folders(self) -> None:
        """Resolve each workspace folder's section over the current global settings."""
        resolved = {}
        for uri, raw in self.folder_raw.items():
            try:
                resolved[uri] = for_folder(raw, self.settings)
            except SettingsError as exc:
                self.tell_once(f"settings:{uri}:{exc}", f"{uri}: {exc}", types.MessageType.Error)
        self.folder_settings = resolved

    def settings_for(self, uri: str) -> Settings:
        """The settings that apply to a document: its workspace folder's, else the global ones."""
        if not self.folder_settings:
            return self.settings
        path = to_fs_path(uri) if uri.startswith("file:") else None
        roots = {key: to_fs_path(key) or "" for key in self.folder_settings}
        key = folder_of(path, roots)
        return self.folder_settings[key] if key is not None else self.settings

    # ---- loading -----------------------------------------------------------------------------

    async def load_model(self) -> None:
        """Load the model off the event loop, reported through work-done progress."""
        self.model_ready.clear()
        token = f"stackcoder-load-{uuid.uuid4().hex[:8]}"
        window = self.client_capabilities.window
        progress = bool(window and window.work_done_progress)
        if progress:
            try:
                await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=5)
                self.work_done_progress.begin(
                    token, types.WorkDoneProgressBegin(title="StackCoder", message="loading the code model")
                )
            except Exception:
                progress = False
        settings = self.settings.model
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.models.load, settings)
            self.models.set_prompt_budget(
                self.settings.completion.max_prompt_tokens, self.settings.completion.max_new_tokens
            )
            message = f"model {self.status.model.name} ready"
        except Exception as exc:
            message = "no model"
            self.tell_once(
                f"model:{settings}",
                f"could not load the code model ({exc}); completions are off until stackcoder.model.path "
                "points at a model.",
            )
        finally:
            self.model_ready.set()
            if progress:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    async def open_index(self) -> None:
        """Open the attribution index off the event loop; a bad one is reported once."""
        path = self.settings.provenance.index_path
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.provenance.open, path)
        except Exception as exc:
            self.tell_once(
                f"index:{path}",
                f"could not open the attribution index ({exc}); provenance checks are off until "
                "stackcoder.provenance.indexPath points at an index.",
            )

    def start_context_index(self) -> None:
        """Index the workspace folders for cross-file context (in the background)."""
        from lsp_server.workspace_index import WorkspaceIndex

        roots = [to_fs_path(f.uri) for f in (self.workspace.folders or {}).values()]
        if not roots and self.workspace.root_path:
            roots = [self.workspace.root_path]
        roots = [r for r in roots if r and os.path.isdir(r)]
        if not roots:
            return
        name = os.environ.get(EMBEDDER_ENV, "minilm")
        factory = None
        if name != "none":
            from lsp_server.embeddings import make_embedder

            model_path = self.settings.model.path
            # torch serves only the embedder unless the model runs on the transformers backend
            threads = 0 if self.settings.model.backend == "transformers" else 1

            def factory() -> Any:
                return make_embedder(name, model_path, threads=threads)

        self.context_index = WorkspaceIndex(roots, factory)
        self.context_index.start()

    def close_all(self) -> bool:
        """Stop every generation and background worker; False if one of them would not stop."""
        for token in list(self.pending.values()):
            token.cancel()
        stopped = self.models.close()
        if self.context_index is not None:
            stopped = self.context_index.close() and stopped
        return stopped

    # ---- documents ---------------------------------------------------------------------------

    def document(self, uri: str) -> Any | None:
        """The open document of ``uri`` (pygls keys documents by the unquoted URI), or None."""
        return self.workspace.text_documents.get(unquote(uri))

    def open_text(self, uri: str) -> tuple[str, int | None, str | None]:
        """(text, version, languageId) of an open document; InvalidParamsError if it is not open."""
        doc = self.document(uri)
        if doc is None:
            raise InvalidParamsError(f"The document {uri} is not open; open it before asking for this.")
        return doc.source, doc.version, doc.language_id

    @property
    def units(self) -> Any:
        """The negotiated position encoding's code units."""
        return codec_for(self.workspace.position_encoding)

    def repo_and_path(self, uri: str) -> tuple[str | None, str | None, str | None]:
        """(repository name, path relative to its workspace folder, absolute path) of a document."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        if path is None:
            return None, None, None
        for folder in (self.workspace.folders or {}).values():
            root = to_fs_path(folder.uri)
            if root and (path == root or path.startswith(root.rstrip(os.sep) + os.sep)):
                return Path(root).name, os.path.relpath(path, root), path
        root = self.workspace.root_path
        if root and path.startswith(root.rstrip(os.sep) + os.sep):
            return Path(root).name, os.path.relpath(path, root), path
        return None, Path(path).name, path


server = StackCoderServer()


# ---- lifecycle -----------------------------------------------------------------------------------


@server.feature(types.INITIALIZE)
def on_initialize(ls: StackCoderServer, params: types.InitializeParams) -> None:
    """Read the settings passed in initializationOptions."""
    if params.initialization_options is not None:
        ls.apply_settings(params.initialization_options, source="initializationOptions")


@server.feature(types.INITIALIZED)
async def on_initialized(ls: StackCoderServer, params: types.InitializedParams) -> None:
    """Pull the configuration, then load the model, the attribution index and the workspace index."""
    await ls.pull_configuration()
    ls.started = True
    ls.spawn(ls.load_model())
    if ls.settings.provenance.enabled:
        ls.spawn(ls.open_index())
    if ls.settings.completion.cross_file_context:
        try:
            ls.start_context_index()
        except Exception as exc:
            ls.tell_once("context-index", f"cross-file context is off ({exc}).")


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration(ls: StackCoderServer, params: types.DidChangeConfigurationParams) -> None:
    """Settings pushed by the client, or a hint to pull them."""
    settings = protocol.to_plain(params.settings)
    if isinstance(settings, dict) and settings.get("stackcoder") is not None:
        ls.apply_settings(settings, source="didChangeConfiguration")
    else:
        await ls.pull_configuration()


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: StackCoderServer, params: Any) -> None:
    """Stop generations and watchers before the client exits us."""
    ls.close_all()


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_change(ls: StackCoderServer, params: types.DidChangeTextDocumentParams) -> None:
    """Move provenance findings with the edited text (or drop those whose code was edited)."""
    uri = params.text_document.uri
    findings = ls.provenance.findings.get(uri)
    if not findings:
        return
    moved = provenance.shift_findings(findings, list(params.content_changes), ls.units)
    if moved != findings:
        publish_findings(ls, uri, moved)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_close(ls: StackCoderServer, params: types.DidCloseTextDocumentParams) -> None:
    """Forget per-document state."""
    uri = params.text_document.uri
    token = ls.pending.pop(uri, None)
    if token is not None:
        token.cancel()
    ls.provenance.findings.pop(uri, None)


# ---- inline completion ---------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def on_inline_completion(
    ls: StackCoderServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList | None:
    """FIM ghost text at the cursor; a newer request for the same document cancels this one."""
    start = asyncio.get_running_loop().time()
    uri = params.text_document.uri
    doc = ls.document(uri)
    settings = ls.settings_for(uri)
    if doc is None or not settings.completion.enabled:
        return types.InlineCompletionList(items=[])
    scheduler = ls.models.scheduler
    if scheduler is None:
        return types.InlineCompletionList(items=[])
    cancel = ls.models.open_token()
    previous = ls.pending.get(uri)
    if previous is not None:
        previous.cancel()
    ls.pending[uri] = cancel
    selected = params.context.selected_completion_info
    repo, rel, path = ls.repo_and_path(uri)
    req = completion.CompletionRequest(
        request_id=str(ls.protocol.msg_id),
        uri=uri,
        text=doc.source,
        position=params.position,
        invoked=params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked,
        selected_range=selected.range if selected else None,
        selected_text=selected.text if selected else "",
        path=path,
        repo_name=repo,
        relative_path=rel,
        units=ls.units,
    )
    index = ls.context_index if settings.completion.cross_file_context else None
    query = ls.provenance.query if ls.provenance.index is not None else None
    loop = asyncio.get_running_loop()
    try:
        outcome = await completion.run_completion(
            req,
            settings.completion,
            settings.provenance,
            cancel=cancel,
            generate=functools.partial(scheduler.complete, uri),
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
        ls.models.release(cancel)
        if ls.pending.get(uri) is cancel:
            del ls.pending[uri]
    if outcome.cancelled:
        return types.InlineCompletionList(items=[])
    elapsed = (asyncio.get_running_loop().time() - start) * 1000
    ls.status.latency.add(elapsed)
    ls.status.add_stages(outcome.timings_ms)
    log.debug(
        "[%s] completion %.1f ms %s cached=%s", req.request_id, elapsed, outcome.timings_ms, outcome.cached
    )
    result = completion.to_inline_list(outcome, uri, protocol.CMD_DID_ACCEPT)
    ls.status.shown += len(result.items)
    for item, choice in zip(result.items, outcome.choices, strict=True):
        if choice.report is not None and item.command and item.command.arguments:
            ls.offered[item.command.arguments[0]["id"]] = choice.report
            while len(ls.offered) > MAX_TRACKED_ACCEPTS:
                ls.offered.popitem(last=False)
    return result


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


def publish_findings(ls: StackCoderServer, uri: str, findings: list[provenance.Finding]) -> None:
    """Remember a document's findings (for hovers) and publish them as diagnostics."""
    ls.provenance.findings[uri] = findings
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri, diagnostics=[provenance.diagnostic_of(f, uri) for f in findings]
        )
    )


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
    return {"text": answer}


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
    return {"text": answer}


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
    index = ls.context_index
    result["context"] = (
        {"files": index.file_count, "chunks": index.chunk_count, "ready": index.ready, "error": index.error}
        if index is not None
        else None
    )
    return result
