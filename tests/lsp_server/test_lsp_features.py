"""End-to-end tests of every method against the real server process and a small real model."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import config, init_params, open_doc, plain, request, wait_for, wait_model
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(config=config(), scope="module")
async def client(lsp_client: LanguageClient, default_model_dir: Path, lsp_workspace: Path):
    options = {
        "stackcoder": {
            "model": {"path": str(default_model_dir), "threads": 1},
            "completion": {"maxNewTokens": 12},
            "chat": {"temperature": 0.0},  # greedy answers: the same question gets the same answer
        }
    }
    lsp_client.initialize_result = await lsp_client.initialize_session(init_params(lsp_workspace, options))
    status = await wait_model(lsp_client)
    assert status["model"]["loaded"], status
    yield
    await lsp_client.shutdown_session()


def doc_uri(root: Path, name: str) -> str:
    return (root / name).as_uri()


def inline_params(uri: str, line: int, character: int, invoked: bool = False, selected=None):
    kind = (
        types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    )
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind, selected_completion_info=selected),
    )


async def test_capabilities_and_model_loading_progress(client: LanguageClient) -> None:
    caps = client.initialize_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.code_action_provider and caps.hover_provider
    assert {"stackcoder.infill", "stackcoder.explain", "stackcoder.checkProvenance"} <= set(
        caps.execute_command_provider.commands
    )
    # model loading was reported through work-done progress: begin ... end
    kinds = [[v.kind for v in values] for values in client.progress_reports.values()]
    assert ["begin", "end"] in kinds


async def test_inline_completion_ranges_are_utf16_on_non_ascii_lines(
    client: LanguageClient, lsp_workspace
) -> None:
    # The cursor after the line's text: its code points, and one more UTF-16 unit for the emoji.
    # A small model may have nothing to say after one of these lines; the first that gets a
    # completion is checked.
    lines = ["s = 'é😋'; x = ", "s = 'é😋'; values = [", "s = 'é😋'; print(", "s = 'é😋'; def f(a"]
    result, column, uri = None, 0, ""
    for attempt, line in enumerate(lines):
        column = len(line) + 1
        uri = doc_uri(lsp_workspace, f"notes/ünïcødé{attempt}.py")
        open_doc(client, uri, line + "\ny = 2\n")
        result = await client.text_document_inline_completion_async(inline_params(uri, 0, column))
        assert result is not None
        if result.items:
            break
    assert result is not None and len(result.items) == 1, client.messages
    item = result.items[0]
    assert item.range.start == types.Position(line=0, character=column) == item.range.end
    assert item.command.command == "stackcoder.didAcceptCompletion"
    arg = plain(item.command.arguments[0])
    assert arg["uri"] == uri and arg["text"] == item.insert_text and arg["id"]
    assert arg["range"]["start"] == {"line": 0, "character": column}
    # a position past the end of the line and of the document is clamped, not an error
    result = await client.text_document_inline_completion_async(inline_params(uri, 40, 400))
    assert result is not None
    for it in result.items:
        assert it.range.start == types.Position(line=2, character=0)


async def test_invoked_returns_choices_and_selected_completion_info_is_honoured(
    client, lsp_workspace
) -> None:
    uri = doc_uri(lsp_workspace, "app.py")
    text = (lsp_workspace / "app.py").read_text() + "\nvalue = rep"
    open_doc(client, uri, text)
    last = text.count("\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, last, 11, invoked=True))
    assert 1 <= len(result.items) <= 3
    assert len({i.insert_text for i in result.items}) == len(result.items)
    selected = types.SelectedCompletionInfo(
        range=types.Range(
            start=types.Position(line=last, character=8), end=types.Position(line=last, character=11)
        ),
        text="report",
    )
    result = await client.text_document_inline_completion_async(
        inline_params(uri, last, 11, selected=selected)
    )
    for item in result.items:
        assert item.insert_text.startswith("report")
        assert item.range == selected.range


# Cursor spots to try: a small model may have nothing (or only a cut loop) to say at one of them.
TYPED_THROUGH_DOCUMENTS = (
    "def add(a, b):\n    return ",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        ",
    "import os\n\n\ndef read(path):\n    with open(path) as f:\n        ",
    "for i in range(10):\n    ",
)


async def test_typed_through_completion_continues_the_suggestion(client, lsp_workspace) -> None:
    for index, text in enumerate(TYPED_THROUGH_DOCUMENTS):
        uri = doc_uri(lsp_workspace, f"typed{index}.py")
        open_doc(client, uri, text)
        line, column = text.count("\n"), len(text.rsplit("\n", 1)[-1])
        first = await client.text_document_inline_completion_async(inline_params(uri, line, column))
        suggestion = first.items[0].insert_text if first.items else ""
        if len(suggestion.strip()) >= 2 and not suggestion.startswith("\n"):  # typed on this line
            break
    else:
        pytest.skip("the model suggested nothing to type through at any of the cursors")
    typed = suggestion[0]
    runs_before = (await request(client, "stackcoder/status", {}))["engine"]
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=line, character=column),
                        end=types.Position(line=line, character=column),
                    ),
                    text=typed,
                )
            ],
        )
    )
    second = await client.text_document_inline_completion_async(inline_params(uri, line, column + 1))
    assert second.items and second.items[0].insert_text == suggestion[1:]
    runs_after = (await request(client, "stackcoder/status", {}))["engine"]
    assert runs_after["cache_hits"] == runs_before["cache_hits"] + 1
    assert runs_after["model_runs"] == runs_before["model_runs"]  # the model did not run


async def test_accepting_a_completion_is_counted(client, lsp_workspace) -> None:
    before = await request(client, "stackcoder/status", {})
    arg = {
        "id": "abc",
        "uri": doc_uri(lsp_workspace, "app.py"),
        "text": "x",
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
    }
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stackcoder.didAcceptCompletion", arguments=[arg])
    )
    after = await request(client, "stackcoder/status", {})
    assert after["completions"]["accepted"] == before["completions"]["accepted"] + 1
    assert after["completions"]["shown"] >= 1
    assert after["latency_ms"]["count"] >= 1 and after["latency_ms"]["p50"] > 0
    assert after["version"] and after["index"]["loaded"] is False


async def test_code_actions_offer_the_three_commands_on_a_selection(client, lsp_workspace) -> None:
    uri = doc_uri(lsp_workspace, "geometry.py")
    open_doc(client, uri, (lsp_workspace / "geometry.py").read_text())
    rng = types.Range(start=types.Position(line=3, character=0), end=types.Position(line=4, character=10))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    commands = {a.command.command: a.command.arguments for a in actions}
    assert set(commands) == {"stackcoder.infill", "stackcoder.explain", "stackcoder.checkProvenance"}
    assert plain(commands["stackcoder.explain"]) == [uri, plain(rng)]
    empty = types.Range(start=rng.start, end=rng.start)
    none = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=empty,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert not none


async def test_infill_fills_the_marker_through_apply_edit(client, lsp_workspace) -> None:
    uri = doc_uri(lsp_workspace, "fill.py")
    text = "def double(x):\n    return <FILL_HERE>\n\nprint(double(2))\n"
    open_doc(client, uri, text)
    rng = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=2, character=0))
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stackcoder.infill", arguments=[uri, plain(rng)])
    )
    result = plain(result)
    assert result["applied"] is True
    edit = client.applied_edits[-1]
    (text_edit,) = edit.changes[uri]
    assert text_edit.range == types.Range(
        start=types.Position(line=1, character=11), end=types.Position(line=1, character=22)
    )
    assert text_edit.new_text == result["text"]


async def test_explain_streams_deltas_that_add_up_to_the_answer(client, lsp_workspace) -> None:
    uri = doc_uri(lsp_workspace, "geometry.py")
    open_doc(client, uri, (lsp_workspace / "geometry.py").read_text(encoding="utf-8"))
    params = {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}},
        "partialResultToken": "explain-1",
    }
    result = await request(client, "stackcoder/explain", params)
    deltas = [v["text"] for v in client.partials.get("explain-1", [])]
    assert result["text"].strip() and deltas
    assert "".join(deltas) == result["text"]
    # the code action command answers the same way without streaming
    cmd = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stackcoder.explain", arguments=[uri, params["range"]])
    )
    assert plain(cmd)["text"] == result["text"]
    # the selected code is what gets explained: another function, another answer
    other = {**params, "range": {"start": {"line": 7, "character": 0}, "end": {"line": 9, "character": 0}}}
    other["partialResultToken"] = "explain-2"
    assert (await request(client, "stackcoder/explain", other))["text"] != result["text"]


async def test_chat_streams_and_uses_the_editor_context(client, lsp_workspace) -> None:
    messages = [
        {"role": "user", "content": "What does circle_area return?"},
        {"role": "assistant", "content": "The area."},
        {"role": "user", "content": "And for a negative radius?"},
    ]
    context = {
        "uri": doc_uri(lsp_workspace, "app.py"),
        "selection": "circle_area(r)",
        "languageId": "python",
        "fileText": (lsp_workspace / "app.py").read_text(encoding="utf-8"),
    }
    params = {"messages": messages, "context": context, "partialResultToken": 7}
    result = await request(client, "stackcoder/chat", params)
    assert result["text"].strip()
    assert "".join(v["text"] for v in client.partials.get(7, [])) == result["text"]
    # answers are greedy: the same conversation and context give the same answer, so a different
    # answer without the context shows that the context reached the prompt
    again = await request(client, "stackcoder/chat", {**params, "partialResultToken": 8})
    assert again["text"] == result["text"]
    bare = await request(client, "stackcoder/chat", {"messages": messages, "partialResultToken": 9})
    assert bare["text"] != result["text"]


async def test_chat_rejects_bad_params_with_invalid_params(client) -> None:
    with pytest.raises(JsonRpcException) as err:
        await client.protocol.send_request_async(
            "stackcoder/chat", {"messages": [{"role": "system", "content": 1}]}
        )
    assert err.value.code == -32602 and "role" in err.value.message


async def test_attribution_without_an_index_says_what_to_do(client) -> None:
    with pytest.raises(JsonRpcException) as err:
        await request(client, "stackcoder/attribution", {"text": "print(1)\n"})
    assert err.value.code == -32803 and "index" in err.value.message


async def test_hover_without_findings_is_empty(client, lsp_workspace) -> None:
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=doc_uri(lsp_workspace, "geometry.py")),
            position=types.Position(line=3, character=4),
        )
    )
    assert hover is None


async def answered(client: LanguageClient, uri: str, line: int, character: int) -> int:
    """How many completions the server answered for one inline request: 1, or 0 while it is off."""
    before = (await request(client, "stackcoder/status", {}))["latency_ms"]["count"]
    await client.text_document_inline_completion_async(inline_params(uri, line, character))
    return (await request(client, "stackcoder/status", {}))["latency_ms"]["count"] - before


async def test_configuration_change_disables_completion_and_bad_values_are_reported(
    client, lsp_workspace
) -> None:
    uri = doc_uri(lsp_workspace, "switch.py")
    open_doc(client, uri, "def double(x):\n    return ")

    async def off() -> bool:
        return await answered(client, uri, 1, 11) == 0

    async def on() -> bool:
        return await answered(client, uri, 1, 11) == 1

    assert await on()
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"stackcoder": {"completion": {"enabled": False}}})
    )
    await wait_for(off, 10)
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    assert not result.items
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"stackcoder": {"completion": {"maxNewTokens": "many"}}})
    )
    await wait_for(lambda: any("maxNewTokens" in m.message for m in client.messages), 10)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"stackcoder": {"completion": {"enabled": True}}})
    )
    await wait_for(on, 10)


async def test_workspace_folder_settings_apply_to_documents_in_that_folder(
    client, lsp_workspace, tmp_path
) -> None:
    inside = doc_uri(lsp_workspace, "geometry.py")
    open_doc(client, inside, (lsp_workspace / "geometry.py").read_text(encoding="utf-8"))
    outside = (tmp_path / "outside.py").as_uri()
    open_doc(client, outside, "def double(x):\n    return ")

    async def inside_generates() -> bool:
        return await answered(client, inside, 4, 4) == 1

    async def inside_is_off() -> bool:
        return await answered(client, inside, 4, 4) == 0

    # the folder turns completion off; a change without settings makes the server pull them per folder
    folder = lsp_workspace.as_uri()
    client.set_configuration({"completion": {"enabled": False}}, section="stackcoder", scope_uri=folder)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await wait_for(inside_is_off, 20)
    assert await answered(client, outside, 1, 11) == 1  # outside the folder the global settings apply
    client.set_configuration({"completion": {"enabled": True}}, section="stackcoder", scope_uri=folder)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await wait_for(inside_generates, 20)


async def test_cancel_request_stops_a_streaming_chat(client) -> None:
    import asyncio

    params = {
        "messages": [{"role": "user", "content": "Write a long story."}],
        "partialResultToken": "cancel-me",
    }
    future = client.protocol.send_request("stackcoder/chat", params, msg_id="chat-to-cancel")
    await wait_for(lambda: client.partials.get("cancel-me"), 60, 0.01)
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="chat-to-cancel"))
    with pytest.raises(JsonRpcException) as err:
        await asyncio.wait_for(asyncio.wrap_future(future), 30)
    assert err.value.code == -32800
    streamed = len(client.partials["cancel-me"])
    await asyncio.sleep(1.0)
    assert len(client.partials["cancel-me"]) <= streamed + 1  # the generation stopped
    # the generation thread is free again
    status = await asyncio.wait_for(request(client, "stackcoder/status", {}), 10)
    assert status["model"]["loaded"]
