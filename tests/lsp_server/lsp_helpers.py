"""Helpers of the language-server tests: server environment, clients, waiting."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

REPO_ROOT = Path(__file__).resolve().parents[2]

WORKSPACE_FILES = {
    "geometry.py": "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\n"
    "def rectangle_area(width, height):\n    return width * height\n",
    "app.py": "from geometry import circle_area\n\n\ndef report(r):\n    area = circle_area(r)\n    return area\n",
    "notes/ünïcødé.py": "# ünïcødé 😋\nname = 'émoji 🐍'\n",
}


def server_env(**extra: str) -> dict[str, str]:
    """Environment of a server process: offline, caches in the temp dir, BM25-only context."""
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            "STACKCODER_CACHE": str(Path(tempfile.gettempdir()) / "stackcoder-test-cache"),
            "STACKCODER_CONTEXT_EMBEDDER": "none",
            "STACKCODER_INDEX": str(Path(tempfile.gettempdir()) / "stackcoder-no-default-index"),
        }
    )
    env.update(extra)
    return env


SERVER_COMMAND = [sys.executable, "-m", "lsp_server"]


def make_client() -> LanguageClient:
    """pytest-lsp's client, also recording `$/progress` values that are not work-done reports."""
    client = make_test_lsp_client()
    client.partials: dict[Any, list[Any]] = {}  # type: ignore[misc]
    default = client.protocol.fm.features[types.PROGRESS]

    def progress(params: types.ProgressParams) -> None:
        value = params.value if isinstance(params.value, dict) else {}
        if "kind" in value:
            default(params)
        else:
            client.partials.setdefault(params.token, []).append(value)

    client.protocol.fm.features[types.PROGRESS] = progress
    client.applied_edits: list[types.WorkspaceEdit] = []  # type: ignore[misc]

    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        client.applied_edits.append(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    client.protocol.fm.features[types.WORKSPACE_APPLY_EDIT] = apply_edit

    # lsprotocol reads every code action that carries a command as a bare Command; tell them apart
    # the way editors do (a Command's `command` is a string)
    converter = client.protocol._converter

    def code_action_or_command(obj: Any, _: type) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    union = typing.Union[types.Command, types.CodeAction]  # noqa: UP007 - the key lsprotocol registered
    converter.register_structure_hook(union, code_action_or_command)
    return client


def config(**env: str) -> ClientServerConfig:
    return ClientServerConfig(
        server_command=SERVER_COMMAND, server_env=server_env(**env), client_factory=make_client
    )


def make_workspace(root: Path) -> Path:
    """Write the fixture project under ``root``."""
    for rel, text in WORKSPACE_FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def init_params(
    root: Path, options: dict[str, Any] | None, spec: str = "visual-studio-code"
) -> types.InitializeParams:
    return types.InitializeParams(
        capabilities=client_capabilities(spec),
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options=options,
    )


async def wait_for(cond: Callable[[], Any], timeout: float = 120.0, interval: float = 0.1) -> Any:
    """Poll an async or sync condition until it is truthy."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > end:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


async def wait_model(client: LanguageClient, timeout: float = 240.0) -> dict[str, Any]:
    """Wait until the server has loaded the model (or given up); returns the status."""

    async def ready() -> dict[str, Any] | None:
        status = await request(client, "stackcoder/status", {})
        return status if (status["model"]["loaded"] or status["model"]["error"]) else None

    return await wait_for(ready, timeout, 0.25)


async def request(client: LanguageClient, method: str, params: Any) -> Any:
    """A custom request; the result as plain JSON values."""
    return plain(await client.protocol.send_request_async(method, params))


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)
        )
    )


def plain(value: Any) -> Any:
    """Responses of custom methods as plain JSON values."""
    from lsp_server.protocol import to_plain

    return to_plain(value)
