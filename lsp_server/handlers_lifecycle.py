"""Lifecycle and document handlers: initialize, configuration, shutdown, edits and closes."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from lsp_server import protocol, provenance
from lsp_server.app import StackCoderServer, publish_findings, server

log = logging.getLogger(__name__)


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
    service = ls.models.service
    if service is not None:
        service.cancel(uri)
    ls.provenance.findings.pop(uri, None)
