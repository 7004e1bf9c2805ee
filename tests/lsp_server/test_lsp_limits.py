"""Caps on what one client can make the server do, over JSON-RPC on the server's stdio: each
oversized input gets a clear error (or a one-time message) and the server keeps serving."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from inotify_watches import folders_below, watched_inodes
from lsp_helpers import server_env
from lsp_raw_client import RawServer, model_options

from lsp_server.protocol import MAX_CHAT_CHARS, MAX_CHAT_MESSAGES, MAX_MESSAGE_CHARS

pytestmark = pytest.mark.timeout(300)

INVALID_PARAMS = -32602
REQUEST_FAILED = -32803
MAX_FILES = 4
IGNORED = ("node_modules", ".git")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path):
    """A server on a workspace with more code files than its cap, and large ignored folders."""
    root = tmp_path_factory.mktemp("limits-ws")
    for i, rel in enumerate(
        ["a.py", "b.py", "lib/c.py", "lib/d.py", "lib/sub/e.py", "lib/sub/f.py", "z/g.py"]
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"def func_{i}():\n    return {i}\n")
    for top in IGNORED:
        for j in range(20):
            (root / top / f"pkg{j}" / "lib").mkdir(parents=True)
    options = model_options(default_model_dir, contextMaxFiles=MAX_FILES)
    options["stackcoder"]["chat"] = {"maxNewTokens": 8}
    server = RawServer(server_env())
    server.initialize(root.as_uri(), options)
    assert server.wait_status()["model"]["loaded"]
    server.root = root  # type: ignore[attr-defined]
    yield server
    server.close()


def chat(server: RawServer, messages: list[dict[str, str]]) -> dict[str, Any]:
    return server.call("stackcoder/chat", {"messages": messages})


def ask(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def still_serving(server: RawServer) -> None:
    answer = chat(server, [ask("Write a function that adds two numbers.")])
    assert isinstance(answer["result"]["text"], str), answer
    assert server.proc.poll() is None


def test_oversized_chats_are_refused_naming_the_limit_and_the_server_keeps_serving(limited) -> None:
    too_many = [ask("hi") if i % 2 == 0 else {"role": "assistant", "content": "hello"} for i in range(201)]
    too_long = [ask("x" * (MAX_MESSAGE_CHARS + 1))]
    too_much = [ask("y" * (MAX_MESSAGE_CHARS - 10)) for _ in range(MAX_CHAT_CHARS // MAX_MESSAGE_CHARS + 1)]
    for messages, expected in (
        (
            too_many,
            f"has 201 messages, more than the {MAX_CHAT_MESSAGES} a chat takes; clear the chat history",
        ),
        (
            too_long,
            f"messages[0].content has {MAX_MESSAGE_CHARS + 1} characters, more than the {MAX_MESSAGE_CHARS} "
            "a chat message may have; send a shorter message",
        ),
        (too_much, f"hold more than {MAX_CHAT_CHARS} characters together; clear the chat history"),
    ):
        reply = chat(limited, messages)
        assert reply["error"]["code"] == INVALID_PARAMS, reply
        assert expected in reply["error"]["message"]
        still_serving(limited)
    # at the message cap, the conversation is answered (its oldest turns dropped to fit the model)
    at_cap = [
        ask("hi") if i % 2 == 0 else {"role": "assistant", "content": "ok"}
        for i in range(MAX_CHAT_MESSAGES - 1)
    ]
    assert isinstance(chat(limited, at_cap)["result"]["text"], str)
    # under the caps but longer than the model's context window: a one-sentence error, no traceback
    reply = chat(limited, [ask("z = 1\n" * 4_000)])
    assert reply["error"]["code"] == REQUEST_FAILED, reply
    assert (
        "context window" in reply["error"]["message"]
        and "send a shorter message" in reply["error"]["message"]
    )
    assert "Traceback" not in str(reply["error"])
    still_serving(limited)


def test_the_workspace_index_cap_is_told_once_and_the_server_keeps_serving(limited) -> None:
    def told() -> list[str]:
        return [m["message"] for m in limited.messages() if "contextMaxFiles" in m["message"]]

    end = time.monotonic() + 60
    while not told() and time.monotonic() < end:
        time.sleep(0.1)
    assert len(told()) == 1, limited.messages()
    assert f"({MAX_FILES} files)" in told()[0] and "restart the server" in told()[0]
    still_serving(limited)
    assert len(told()) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_the_server_watches_no_folder_inside_ignored_ones(limited) -> None:
    root: Path = limited.root
    ignored = [p for p in folders_below(root) if set(p.relative_to(root).parts) & set(IGNORED)]
    end = time.monotonic() + 30
    while root.stat().st_ino not in watched_inodes(limited.proc.pid) and time.monotonic() < end:
        time.sleep(0.1)
    inodes = watched_inodes(limited.proc.pid)
    assert {root.stat().st_ino, (root / "lib" / "sub").stat().st_ino} <= inodes
    assert not {p.stat().st_ino for p in ignored} & inodes
    still_serving(limited)
