"""The language server on its default model, end to end: no model setting at all, so the server
loads the catalog's real model (Qwen2.5-Coder on llama.cpp) as `make run` does."""

from __future__ import annotations

import ast

import pytest
import pytest_lsp
from lsp_helpers import config, init_params, open_doc, request, wait_model
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

DOCUMENT = (
    "import math\n\n\n"
    "def circle_area(radius: float) -> float:\n"
    '    """The area of a circle of the given radius."""\n'
    "    return \n\n\n"
    "def is_even(n: int) -> bool:\n"
    "    return n % 2 == 0\n"
)


@pytest_lsp.fixture(config=config(), scope="module")
async def client(lsp_client: LanguageClient, real_model_name: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("real-model-workspace")
    (root / "shapes.py").write_text(DOCUMENT, encoding="utf-8")
    options = {"stackcoder": {"completion": {"maxNewTokens": 32}, "chat": {"temperature": 0.0}}}
    lsp_client.initialize_result = await lsp_client.initialize_session(init_params(root, options))
    lsp_client.root = root
    status = await wait_model(lsp_client, timeout=300)
    assert status["model"]["loaded"], status
    yield
    await lsp_client.shutdown_session()


async def test_the_default_model_is_the_catalogs_real_model(
    client: LanguageClient, real_model_name: str
) -> None:
    status = await request(client, "stackcoder/status", {})
    assert status["model"]["name"] == real_model_name
    assert status["model"]["backend"] == "llamacpp"
    assert status["model"]["fallback"] is None


async def test_ghost_text_completes_the_function_body(client: LanguageClient) -> None:
    uri = (client.root / "shapes.py").as_uri()
    open_doc(client, uri, DOCUMENT)
    line = DOCUMENT.splitlines().index("    return ")
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=len("    return ")),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
    )
    assert result is not None and result.items, client.messages
    text = result.items[0].insert_text
    assert "radius" in text and ("math.pi" in text or "3.14" in text), text
    lines = DOCUMENT.splitlines(keepends=True)
    filled = "".join(lines[:line]) + "    return " + text + "\n" + "".join(lines[line + 1 :])
    ast.parse(filled)


async def test_chat_answers_about_the_selection(client: LanguageClient) -> None:
    uri = (client.root / "shapes.py").as_uri()
    params = {
        "messages": [
            {"role": "user", "content": "What does this function return for 7? Answer in one sentence."}
        ],
        "context": {
            "uri": uri,
            "selection": "def is_even(n: int) -> bool:\n    return n % 2 == 0\n",
            "languageId": "python",
        },
        "partialResultToken": "real-chat",
    }
    result = await request(client, "stackcoder/chat", params)
    assert "false" in result["text"].lower(), result["text"]
    assert "".join(v["text"] for v in client.partials.get("real-chat", [])) == result["text"]
    # chat ran on a runtime of its own: the same model, loaded a second time
    status = await request(client, "stackcoder/status", {})
    assert status["model"]["chat"] == status["model"]["name"], status


async def test_explain_describes_the_selected_code(client: LanguageClient) -> None:
    uri = (client.root / "shapes.py").as_uri()
    start = DOCUMENT.splitlines().index("def is_even(n: int) -> bool:")
    params = {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": start, "character": 0}, "end": {"line": start + 2, "character": 0}},
        "partialResultToken": "real-explain",
    }
    result = await request(client, "stackcoder/explain", params)
    assert "even" in result["text"].lower(), result["text"]
