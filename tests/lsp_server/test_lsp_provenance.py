"""Provenance end to end: attribution requests, diagnostics, hovers and the completion policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import config, init_params, open_doc, plain, request, wait_for, wait_model
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

MIT = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"
LEVENSHTEIN = """def levenshtein_distance(source, target):
    rows = len(source) + 1
    cols = len(target) + 1
    table = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        table[i][0] = i
    for j in range(cols):
        table[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost = 0 if source[i - 1] == target[j - 1] else 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
    return table[-1][-1]
"""
PREFIX = "def histogram_of_words(lines):\n    counts = {}\n    for line in lines:\n        for word in line.split():\n            counts[word] = counts.get(word, 0) + 1\n    return "


def build_index(corpus: Path, out: Path, files: dict[str, str]) -> Path:
    from attribution import BuildConfig, build_index

    repo = corpus / "acme-utils"
    repo.mkdir(parents=True)
    (repo / "LICENSE").write_text(MIT)
    for name, text in files.items():
        (repo / name).write_text(text)
    build_index([corpus], out, BuildConfig(workers=1, progress=False))
    return out


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("provenance")
    return build_index(root / "corpus", root / "index", {"textutil.py": LEVENSHTEIN})


@pytest_lsp.fixture(config=config(), scope="module")
async def client(lsp_client: LanguageClient, default_model_dir: Path, lsp_workspace: Path, index_dir: Path):
    options = {
        "stackcoder": {
            "model": {"path": str(default_model_dir), "threads": 1},
            "completion": {"maxNewTokens": 12, "crossFileContext": False},
            "provenance": {"indexPath": str(index_dir)},
        }
    }
    await lsp_client.initialize_session(init_params(lsp_workspace, options))
    await wait_model(lsp_client)
    await wait_for(lambda: request(lsp_client, "stackcoder/status", {}), 30)
    yield
    await lsp_client.shutdown_session()


async def index_loaded(client: LanguageClient, path: Path) -> bool:
    status = await request(client, "stackcoder/status", {})
    return status["index"]["loaded"] and status["index"]["path"] == str(path)


async def test_attribution_request_reports_the_source(client, index_dir) -> None:
    await wait_for(lambda: index_loaded(client, index_dir), 60)
    copied = "\n".join(LEVENSHTEIN.splitlines()[3:10]) + "\n"
    report = await request(client, "stackcoder/attribution", {"text": copied})
    assert report["verdict"] == "copied"
    match = report["matches"][0]
    assert (
        match["repo"] == "acme-utils"
        and match["path"] == "textutil.py"
        and match["kind"] in ("exact", "near")
    )
    original = await request(
        client, "stackcoder/attribution", {"text": "print('hello there, unique words 42')\n"}
    )
    assert original["verdict"] != "copied"


async def test_check_provenance_publishes_diagnostics_and_hover_shows_the_source(
    client, lsp_workspace
) -> None:
    uri = (lsp_workspace / "copied.py").as_uri()
    text = "import sys\n\n" + LEVENSHTEIN
    open_doc(client, uri, text)
    rng = {"start": {"line": 2, "character": 0}, "end": {"line": 15, "character": 0}}
    report = plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="stackcoder.checkProvenance", arguments=[uri, rng])
        )
    )
    assert report["verdict"] == "copied"
    await wait_for(lambda: client.diagnostics.get(uri), 10)
    diag = client.diagnostics[uri][0]
    assert diag.source == "stackcoder" and diag.severity == types.DiagnosticSeverity.Warning
    assert "acme-utils" in diag.message and "textutil.py" in diag.message and "MIT" in diag.message
    assert diag.related_information and plain(diag.data)["match"]["repo"] == "acme-utils"
    assert diag.range.start.line >= 2
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=diag.range.start)
    )
    assert (
        hover is not None
        and "table[i][0] = i" in hover.contents.value
        and "acme-utils" in hover.contents.value
    )


async def test_copied_completion_is_suppressed_or_marked_by_policy(client, lsp_workspace, tmp_path) -> None:
    uri = (lsp_workspace / "words.py").as_uri()
    open_doc(client, uri, PREFIX)
    line, char = PREFIX.count("\n"), len(PREFIX.splitlines()[-1])
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=char),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )
    first = await client.text_document_inline_completion_async(params)
    if not first.items or not first.items[0].insert_text.strip():
        pytest.skip("the random-weight model suggested nothing")
    suggestion = first.items[0].insert_text
    assert "attribution" not in plain(first.items[0].command.arguments[0])
    # the corpus now holds exactly what the model suggests (the engine's cache repeats it)
    copied_index = build_index(
        tmp_path / "corpus", tmp_path / "index", {"words.py": PREFIX + suggestion + "\n"}
    )
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"stackcoder": {"provenance": {"indexPath": str(copied_index), "policy": "suppress"}}}
        )
    )
    await wait_for(lambda: index_loaded(client, copied_index), 60)
    suppressed = await client.text_document_inline_completion_async(params)
    assert not suppressed.items
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"stackcoder": {"provenance": {"policy": "mark"}}})
    )
    await wait_for(lambda: True)
    marked = await client.text_document_inline_completion_async(params)
    assert marked.items and marked.items[0].insert_text == suggestion
    arg = plain(marked.items[0].command.arguments[0])
    assert (
        arg["attribution"]["verdict"] == "copied" and arg["attribution"]["matches"][0]["path"] == "words.py"
    )
    # accepting the marked completion publishes its provenance where it was inserted
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stackcoder.didAcceptCompletion", arguments=[arg])
    )
    await wait_for(lambda: client.diagnostics.get(uri), 10)
    assert client.diagnostics[uri][0].range.start == types.Position(line=line, character=char)
    assert "words.py" in client.diagnostics[uri][0].message
