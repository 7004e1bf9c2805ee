"""Provenance read for the workspace, end to end: own code left out (git remote, "this is my code"
quick fix, mine.json, the setting), license fit in each finding, inserted chat code logged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import config, init_params, open_doc, plain, request, wait_for, wait_model
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

MIT = (
    "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"
    "of this software...\n\nThe above copyright notice and this permission notice shall be included in\n"
    "all copies or substantial portions of the Software.\n"
)
GPL_CODE = """def merge_intervals(intervals):
    ordered = sorted(intervals, key=lambda pair: pair[0])
    merged = [list(ordered[0])] if ordered else []
    for start, end in ordered[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(pair) for pair in merged]
"""
OWN_CODE = """def widget_checksum(parts):
    total = 0
    for index, part in enumerate(parts):
        total = (total * 31 + hash(part.name) + index) % 1_000_003
    return total if total else 1
"""
MIT_CODE = """def chunk_words(words, width):
    lines, current = [], []
    for word in words:
        if sum(len(w) + 1 for w in current) + len(word) > width:
            lines.append(" ".join(current))
            current = []
        current.append(word)
    return lines + ([" ".join(current)] if current else [])
"""


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gplrepo (GPL-3.0-only), widgets (the workspace's own repository), textkit (MIT)."""
    from attribution import BuildConfig, build_index

    corpus = tmp_path_factory.mktemp("own-corpus")
    for name, license_file, code in (
        ("gplrepo", ("pyproject.toml", '[project]\nname = "g"\nlicense = "GPL-3.0-only"\n'), GPL_CODE),
        ("widgets", ("LICENSE", MIT), OWN_CODE),
        ("textkit", ("LICENSE", MIT), MIT_CODE),
    ):
        (corpus / name).mkdir()
        (corpus / name / license_file[0]).write_text(license_file[1])
        (corpus / name / "code.py").write_text(code)
    out = tmp_path_factory.mktemp("own-index") / "index"
    build_index([corpus], out, BuildConfig(workers=1, progress=False))
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MIT project whose git remote is acme/widgets."""
    root = tmp_path_factory.mktemp("own-ws") / "widgets-app"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text('[remote "origin"]\n\turl = git@github.com:acme/widgets.git\n')
    (root / "LICENSE").write_text(MIT)
    (root / "main.py").write_text("print('hi')\n")
    return root


@pytest_lsp.fixture(config=config(), scope="module")
async def client(lsp_client: LanguageClient, workspace: Path, index_dir: Path, tmp_path_factory):
    # no model: these features need only the attribution index
    options = {
        "stackcoder": {
            "model": {"path": str(tmp_path_factory.mktemp("no-model") / "none"), "threads": 1},
            "provenance": {"indexPath": str(index_dir)},
        }
    }
    await lsp_client.initialize_session(init_params(workspace, options))
    await wait_model(lsp_client)

    async def loaded() -> bool:
        status = await request(lsp_client, "stackcoder/status", {})
        return status["index"]["loaded"]

    await wait_for(loaded, 60)
    yield
    await lsp_client.shutdown_session()


async def check(client: LanguageClient, uri: str, text: str) -> dict:
    open_doc(client, uri, text)
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": text.count("\n"), "character": 0}}
    return plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="stackcoder.checkProvenance", arguments=[uri, rng])
        )
    )


async def test_reports_read_for_the_workspace_say_license_fit_and_skip_own_code(client, workspace) -> None:
    uri = (workspace / "main.py").as_uri()
    gpl = await request(client, "stackcoder/attribution", {"text": GPL_CODE, "uri": uri})
    assert gpl["verdict"] == "copied" and gpl["project_license"] == "MIT"
    fit = gpl["matches"][0]["license_fit"]
    assert fit["verdict"] == "incompatible"
    assert fit["text"] == "GPL-3.0-only source in an MIT project: incompatible"
    # the index holds the workspace's own repository (remote acme/widgets, indexed as "widgets")
    own = await request(client, "stackcoder/attribution", {"text": OWN_CODE, "uri": uri})
    assert own["verdict"] == "original" and own["matches"] == [] and own["mine"] >= 1
    # without a document the report is the index's own, as DESIGN.md fixes it
    plain_report = await request(client, "stackcoder/attribution", {"text": OWN_CODE})
    assert plain_report["verdict"] == "copied" and "license_fit" not in plain_report["matches"][0]


async def test_quick_fix_marks_a_finding_as_mine_and_it_is_not_reported_again(client, workspace) -> None:
    uri = (workspace / "copied.py").as_uri()
    report = await check(client, uri, MIT_CODE)
    assert report["verdict"] == "copied"
    await wait_for(lambda: client.diagnostics.get(uri), 10)
    diag = client.diagnostics[uri][0]
    assert "textkit/code.py" in diag.message
    assert "MIT source in an MIT project: compatible (keep its license notice)" in diag.message
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=diag.range.start, end=diag.range.start),
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    fixes = [
        a
        for a in actions or []
        if isinstance(a, types.CodeAction) and a.kind == types.CodeActionKind.QuickFix
    ]
    titles = [a.title for a in fixes]
    assert len(fixes) == 3 and titles[0].startswith("StackCoder: this is my code"), titles
    assert fixes[0].is_preferred and fixes[0].diagnostics
    mine_file = workspace / ".stackcoder" / "mine.json"
    result = plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=fixes[0].command.command, arguments=fixes[0].command.arguments)
        )
    )
    assert result["added"] and result["scope"] == "finding" and Path(result["file"]) == mine_file
    entry = json.loads(mine_file.read_text())["mine"][0]
    assert entry["repo"] == "textkit" and entry["path"] == "code.py" and entry["lines"][0] == 1
    # the finding is withdrawn at once, and a new check does not report it again
    await wait_for(lambda: len(client.diagnostics.get(uri, [None])) == 0, 10)
    again = await check(client, uri, MIT_CODE)
    assert again["verdict"] == "original" and again["mine"] >= 1
    # the list is a file the user edits: emptying it brings the finding back
    mine_file.write_text('{"mine": []}\n')
    assert (await request(client, "stackcoder/attribution", {"text": MIT_CODE, "uri": uri}))[
        "verdict"
    ] == "copied"


async def test_the_setting_lists_own_repositories_and_a_broken_list_is_reported(client, workspace) -> None:
    uri = (workspace / "main.py").as_uri()
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"stackcoder": {"provenance": {"mine": ["gplrepo"]}}})
    )

    async def gone() -> bool:
        report = await request(client, "stackcoder/attribution", {"text": GPL_CODE, "uri": uri})
        return report["verdict"] == "original"

    await wait_for(gone, 10)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"stackcoder": {"provenance": {"mine": []}}})
    )
    (workspace / ".stackcoder" / "mine.json").write_text("{not json")
    report = await request(client, "stackcoder/attribution", {"text": MIT_CODE, "uri": uri})
    assert report["verdict"] == "copied"  # no list: nothing is the user's but the own repository
    await wait_for(lambda: any("mine.json is not valid JSON" in m.message for m in client.messages), 10)
    (workspace / ".stackcoder" / "mine.json").write_text('{"mine": []}\n')


async def test_inserted_chat_code_is_checked_published_and_logged(client, workspace) -> None:
    uri = (workspace / "inserted.py").as_uri()
    open_doc(client, uri, "import os\n\n" + GPL_CODE)
    rng = {"start": {"line": 2, "character": 0}, "end": {"line": 11, "character": 0}}
    report = plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="stackcoder.didInsertCode",
                arguments=[{"uri": uri, "text": GPL_CODE, "range": rng, "origin": "chat"}],
            )
        )
    )
    assert report["verdict"] == "copied" and report["matches"][0]["license_fit"]["verdict"] == "incompatible"
    await wait_for(lambda: client.diagnostics.get(uri), 10)
    diag = client.diagnostics[uri][0]
    assert diag.range.start.line >= 2 and "incompatible" in diag.message
    log = (workspace / ".stackcoder" / "references.log").read_text()
    (line,) = log.splitlines()
    assert " | chat | inserted.py:3-" in line and "gplrepo/code.py" in line
    assert "GPL-3.0-only source in an MIT project: incompatible" in line
    assert "references.log" in (workspace / ".stackcoder" / ".gitignore").read_text()
    # original code is checked too, but only copies are logged
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="stackcoder.didInsertCode",
            arguments=[{"uri": uri, "text": "x = 1\n", "range": rng, "origin": "chat"}],
        )
    )
    assert len((workspace / ".stackcoder" / "references.log").read_text().splitlines()) == 1


async def test_bad_arguments_are_refused_with_what_to_send(client, workspace) -> None:
    from pygls.exceptions import JsonRpcInvalidParams

    with pytest.raises(
        JsonRpcInvalidParams, match="arguments\\[1\\] must be one of finding, path, repository"
    ):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="stackcoder.markMine",
                arguments=[(workspace / "a.py").as_uri(), "everything", {"repo": "x"}],
            )
        )
    with pytest.raises(Exception, match="not in a workspace folder"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="stackcoder.markMine",
                arguments=["file:///elsewhere/a.py", "repository", {"repo": "x"}],
            )
        )
    shutil.rmtree(workspace / ".stackcoder", ignore_errors=True)
