"""Without its default model the server keeps serving: on the embedded fallback, saying why.

The catalog's default model is either not pulled or broken (a file of the right size whose
bytes are not a GGUF model); the server loads stackcoder-mini instead, reports the reason in
`stackcoder/status` and tells the user once."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import config, init_params, request, wait_for, wait_model
from pytest_lsp import LanguageClient

from engine.catalog import VERIFIED_MARKER, load_catalog

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODELS = Path(tempfile.gettempdir()) / "stackcoder-test-broken-models"


def _broken_default_model() -> str:
    """A models folder where the default model's file (an adapter's base) has the right size and
    marker but no model in it."""
    shutil.rmtree(MODELS, ignore_errors=True)
    catalog = load_catalog()
    default = catalog.get(catalog.default_completion)
    entry = catalog.get(default.adapter.base) if default.adapter else default
    folder = MODELS / entry.name
    folder.mkdir(parents=True)
    path = folder / entry.file
    with path.open("wb") as handle:
        handle.truncate(entry.size)  # sparse: no disk used
    stat = path.stat()
    marker = {"sha256": entry.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    (folder / VERIFIED_MARKER).write_text(json.dumps(marker))
    return default.name


@pytest_lsp.fixture(config=config(STACKCODER_MODELS=str(MODELS), STACKCODER_MODEL=""), scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    lsp_client.default_name = _broken_default_model()
    root = tmp_path_factory.mktemp("fallback-workspace")
    lsp_client.initialize_result = await lsp_client.initialize_session(init_params(root, {}))
    status = await wait_model(lsp_client)
    assert status["model"]["loaded"], status
    yield
    await lsp_client.shutdown_session()
    shutil.rmtree(MODELS, ignore_errors=True)


async def test_a_broken_default_model_falls_back_to_the_embedded_one_and_says_why(
    client: LanguageClient,
) -> None:
    status = await request(client, "stackcoder/status", {})
    assert status["model"]["name"] == "stackcoder-mini"
    reason = status["model"]["fallback"]
    assert f"the default model {client.default_name} cannot be loaded" in reason
    assert "not a GGUF file" in reason and "stackcoder-mini" in reason
    await wait_for(lambda: any("stackcoder-mini" in m.message for m in client.messages), 30)
