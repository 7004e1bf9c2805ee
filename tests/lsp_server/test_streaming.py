"""Explain and chat answers as the server returns them."""

from __future__ import annotations

import asyncio

from lsp_server.streaming import LOOP_NOTE, answer_result, stream_answer


def test_an_answer_stopped_in_a_loop_says_so() -> None:
    looping = "It holds " + "a list of ``None`` and ``None`` " * 4
    assert answer_result(looping) == {"text": looping, "note": LOOP_NOTE}
    assert answer_result("It holds the items, by name.") == {"text": "It holds the items, by name."}


def test_stream_answer_forwards_each_piece_and_returns_the_whole() -> None:
    sent = []

    async def run(fn):  # noqa: ANN001, ANN202 - the host's run: here, on a worker thread
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def main() -> str:
        text = await stream_answer(
            run, lambda cancel: iter(["It ", "", "holds ", "items."]), sent.append, "tok"
        )
        await asyncio.sleep(0)  # deltas are forwarded through the event loop
        return text

    assert asyncio.run(main()) == "It holds items."
    assert [p.value["text"] for p in sent] == ["It ", "holds ", "items."]
    assert {p.token for p in sent} == {"tok"}
