"""Streaming answers through `partialResultToken` / `$/progress` (chat and explain).

Generation runs on the model's thread; each text piece is forwarded to the client as
``$/progress {token, value: {text: DELTA}}`` from the event loop, and the whole text is returned
at the end. Cancelling the awaiting task (``$/cancelRequest``) sets the engine's CancelToken,
so the generation stops within one decoding step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from lsprotocol import types

__all__ = ["stream_answer", "answer_result", "LOOP_NOTE"]


async def stream_answer(
    run: Callable[[Callable[[], Any]], Any],
    pieces: Callable[[Any], Iterator[str]],
    send_progress: Callable[[types.ProgressParams], None],
    token: str | int | None,
    cancel: Any | None = None,
) -> str:
    """Drain ``pieces(cancel)`` on the model thread, forwarding deltas under ``token``; returns the text.

    ``run`` is the host's ``run`` (awaitable execution on the generation thread); ``cancel`` the
    generation's CancelToken (a fresh one when omitted).
    """
    from engine.generation import CancelToken

    loop = asyncio.get_running_loop()
    cancel = cancel if cancel is not None else CancelToken()

    def forward(delta: str) -> None:
        send_progress(types.ProgressParams(token=token, value={"text": delta}))

    def drain() -> str:
        parts: list[str] = []
        for piece in pieces(cancel):
            if cancel.cancelled:
                break
            if piece:
                parts.append(piece)
                if token is not None:
                    loop.call_soon_threadsafe(forward, piece)
        return "".join(parts)

    try:
        return await run(drain)
    except asyncio.CancelledError:
        cancel.cancel()
        raise


LOOP_NOTE = "the model began repeating itself, so the answer was stopped there"


def answer_result(answer: str) -> dict[str, str]:
    """The result of an explain or chat request: the answer's ``text``, and a ``note`` when the
    engine stopped it because it fell into a loop."""
    from engine.postprocess import answer_loops

    return {"text": answer, "note": LOOP_NOTE} if answer_loops(answer) else {"text": answer}
