"""The language server object: settings, the model, the indexes and the statistics.

The handlers live in ``handlers_lifecycle``, ``handlers_completion`` and ``handlers_actions``;
``lsp_server.server`` puts them together.
"""

from __future__ import annotations

import asyncio
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

from lsp_server import ownership, protocol, provenance
from lsp_server.documents import codec_for
from lsp_server.embeddings import make_embedder
from lsp_server.errors import InvalidParamsError, SettingsError
from lsp_server.model_host import ModelHost
from lsp_server.rpc import HardenedProtocol
from lsp_server.settings import Settings, folder_of, for_folder, parse_settings
from lsp_server.status import ServerStatus
from lsp_server.workspace_index import (  # light: its heavy libraries load on its thread
    IndexConfig,
    WorkspaceIndex,
)

__all__ = [
    "StackCoderServer",
    "server",
    "VERSION",
    "request_failed",
    "publish_findings",
    "MAX_TRACKED_ACCEPTS",
]

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
        # per workspace folder: its license and what is the user's own code (mine.json, git remotes)
        self.projects = ownership.ProjectContexts(lambda key, message: self.tell_once(key, message))
        self.context_index: Any | None = None
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
                self.models.configure(new.completion)
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
            self.models.configure(self.settings.completion)
            message = f"model {self.status.model.name} ready"
            if self.status.model.fallback:
                self.tell_once(f"fallback:{self.status.model.fallback}", self.status.model.fallback)
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
        roots = [to_fs_path(f.uri) for f in (self.workspace.folders or {}).values()]
        if not roots and self.workspace.root_path:
            roots = [self.workspace.root_path]
        roots = [r for r in roots if r and os.path.isdir(r)]
        if not roots:
            return
        name = os.environ.get(EMBEDDER_ENV, "minilm")
        factory = None
        if name != "none":
            model_path = self.settings.model.path
            # torch serves only the embedder unless the model runs on the transformers backend
            threads = 0 if self.settings.model.backend == "transformers" else 1

            def factory() -> Any:
                return make_embedder(name, model_path, threads=threads)

        completion = self.settings.completion
        config = IndexConfig(
            max_files=completion.context_max_files,
            max_total_bytes=completion.context_max_megabytes * 1_000_000,
        )
        loop = asyncio.get_running_loop()

        def limited(reached: str, message: str) -> None:  # called on the indexing thread
            setting = "contextMaxFiles" if reached == "files" else "contextMaxMegabytes"
            loop.call_soon_threadsafe(
                self.tell_once,
                "context-limit",
                f"{message}; raise stackcoder.completion.{setting} and restart the server to index more.",
                types.MessageType.Info,
            )

        self.context_index = WorkspaceIndex(roots, factory, config, on_limit=limited)
        self.context_index.start()

    def close_all(self) -> bool:
        """Stop every generation and background worker; False if one of them would not stop."""
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


def publish_findings(ls: StackCoderServer, uri: str, findings: list[provenance.Finding]) -> None:
    """Remember a document's findings (for hovers) and publish them as diagnostics."""
    ls.provenance.findings[uri] = findings
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri, diagnostics=[provenance.diagnostic_of(f, uri) for f in findings]
        )
    )
