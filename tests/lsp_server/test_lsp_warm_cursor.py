"""`stackcoder/warmCursor`: the completion at a cursor the user moved to is computed before the
first keystroke there, over raw JSON-RPC with the embedded model."""

from __future__ import annotations

import time
from typing import Any

import pytest
from lsp_helpers import server_env
from lsp_raw_client import RawServer, did_open, inline, model_options

pytestmark = pytest.mark.timeout(300)

SOURCE = "class Point:\n    def __init__(self, x, y):\n        self.x = x\n\n    def __repr__(self):\n        return "
CURSOR = {"line": 5, "character": 15}  # after `return `


def warm(server: RawServer, uri: str, position: dict[str, int]) -> None:
    server.notify("stackcoder/warmCursor", {"textDocument": {"uri": uri}, "position": position})


def engine(server: RawServer) -> dict[str, Any]:
    return server.call("stackcoder/status", {})["result"]["engine"]


@pytest.fixture
def started(tmp_path, default_model_dir):
    servers: list[RawServer] = []

    def start(**completion: Any) -> RawServer:
        server = RawServer(server_env())
        servers.append(server)
        server.initialize(tmp_path.as_uri(), model_options(default_model_dir, maxNewTokens=16, **completion))
        assert server.wait_status()["model"]["loaded"]
        return server

    yield start
    for server in servers:
        server.close()


def test_the_first_keystroke_after_a_warm_up_is_answered_without_the_model(started, tmp_path) -> None:
    server = started()
    uri = (tmp_path / "point.py").as_uri()
    did_open(server, uri, SOURCE)
    # the cursor rests at the end of a line of code: the warm-up computes the completion after
    # Enter (with the line's indentation) and the one at the cursor
    warm(server, uri, CURSOR)
    deadline = time.monotonic() + 60
    while engine(server)["warmed"] < 2:
        assert time.monotonic() < deadline, engine(server)
        time.sleep(0.05)
    answer = server.response(inline(server, uri, **CURSOR))["result"]
    counters = engine(server)
    assert counters["model_runs"] == 0 and counters["cache_hits"] == 1, counters
    if answer["items"]:  # the warm-up's suggestion, placed at the cursor
        assert answer["items"][0]["range"]["start"] == CURSOR
    # warming the same place again finds the cache and does not run the model
    warm(server, uri, CURSOR)
    time.sleep(0.5)
    assert engine(server)["warmed"] == 2
    # the user presses Enter: the editor keeps the indentation, and the answer is already there
    server.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": CURSOR, "end": CURSOR}, "text": "\n        "}],
        },
    )
    assert "result" in server.response(inline(server, uri, 6, 8))
    counters = engine(server)
    assert counters["model_runs"] == 0 and counters["cache_hits"] == 2, counters


def test_bad_warm_ups_are_ignored_and_the_setting_turns_them_off(started, tmp_path) -> None:
    server = started(warmOnCursorMove=False)
    uri = (tmp_path / "point.py").as_uri()
    did_open(server, uri, SOURCE)
    warm(server, uri, CURSOR)
    server.notify("stackcoder/warmCursor", {"textDocument": {"uri": uri}})  # no position
    server.notify("stackcoder/warmCursor", {"position": CURSOR})  # no document
    warm(server, (tmp_path / "closed.py").as_uri(), CURSOR)  # not open
    warm(server, uri, {"line": 999, "character": 0})  # past the end
    time.sleep(1.0)
    counters = engine(server)
    assert counters["warmed"] == 0 and counters["model_runs"] == 0, counters
    assert "result" in server.response(inline(server, uri, **CURSOR))  # still serving
    assert engine(server)["model_runs"] == 1


def cached_completion(server: RawServer, uri: str, line: int, character: int) -> dict[str, Any]:
    return server.response(inline(server, uri, line, character, method="stackcoder/cachedCompletion"))


def test_a_cache_only_request_answers_what_the_cache_holds_and_never_runs_the_model(
    started, tmp_path
) -> None:
    server = started()
    uri = (tmp_path / "point.py").as_uri()
    did_open(server, uri, SOURCE)
    # nothing cached yet: no items, and the model did not run
    assert cached_completion(server, uri, **CURSOR)["result"]["items"] == []
    assert engine(server)["model_runs"] == 0 and engine(server)["warmed"] == 0
    warm(server, uri, CURSOR)
    deadline = time.monotonic() + 60
    while engine(server)["warmed"] < 2:
        assert time.monotonic() < deadline, engine(server)
        time.sleep(0.05)
    quick = cached_completion(server, uri, **CURSOR)["result"]
    full = server.response(inline(server, uri, **CURSOR))["result"]
    texts = [[item["insertText"] for item in answer["items"]] for answer in (quick, full)]
    assert texts[0] == texts[1], texts  # the same suggestion, without the model
    counters = engine(server)
    assert counters["model_runs"] == 0 and counters["cache_hits"] == 2, counters
    # elsewhere the cache holds nothing
    assert cached_completion(server, uri, 2, 8)["result"]["items"] == []
    assert engine(server)["model_runs"] == 0
    bad = server.call("stackcoder/cachedCompletion", {"textDocument": {"uri": uri}})
    assert bad["error"]["code"] == -32602, bad
    assert "result" in cached_completion(server, uri, **CURSOR)  # still serving
