"""Ghost text before chat: the foreground gate, and a chat answer that pauses on its own runtime
while a completion runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

from helpers.paced_backend import PacedBackend

from engine.generation import CancelToken
from engine.model import CodeModel
from engine.priority import ForegroundGate
from engine.service import CompletionService
from engine.types import ChatRequest, CompletionRequest


def _counting(produced: list[int], n: int) -> Generator[str, None, None]:
    for i in range(n):
        produced.append(i)
        yield str(i)


def test_background_work_does_not_compute_its_next_piece_while_foreground_work_runs() -> None:
    gate = ForegroundGate()
    produced: list[int] = []
    stream = gate.background(_counting(produced, 3))
    assert next(stream) == "0"
    inside, release = threading.Event(), threading.Event()

    def completion() -> None:
        with gate.foreground():
            inside.set()
            release.wait(5)

    runner = threading.Thread(target=completion)
    runner.start()
    assert inside.wait(5)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(next(stream)))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and produced == [0]  # waiting, and the next piece not computed
    release.set()
    reader.join(5)
    runner.join(5)
    assert got == ["1"] and produced == [0, 1]
    assert gate.pauses == 1 and gate.paused_s > 0.2 and not gate.busy


def test_a_cancelled_answer_stops_waiting_and_closing_it_closes_its_source() -> None:
    gate = ForegroundGate()
    closed = threading.Event()

    def pieces() -> Generator[str, None, None]:
        try:
            yield from ("a", "b", "c")
        finally:
            closed.set()

    cancel = CancelToken()
    stream = gate.background(pieces(), cancel)
    with gate.foreground():
        threading.Timer(0.1, cancel.cancel).start()
        assert next(stream) == "a"  # the wait ends with the cancellation, not the foreground work
    stream.close()
    assert closed.is_set()


def _completion_model(answer: str, pace: float) -> CodeModel:
    return CodeModel(PacedBackend([answer], pace=pace), name="paced", family="remote", fim=None)


def test_chat_runs_on_its_own_runtime_and_pauses_while_a_completion_runs() -> None:
    words = " ".join(str(i) for i in range(110))  # ~400 characters, streamed one at a time
    chat_backend = PacedBackend([words], pace=0.005)
    chat_model = CodeModel(chat_backend, name="chat", family="remote", fim=None)
    service = CompletionService(_completion_model("y" * 40, pace=0.01), chat_loader=lambda: chat_model)
    try:
        assert service.prepare_chat() is chat_model and service.chat_model_name == "chat"
        stamps: list[float] = []
        pieces: list[str] = []

        def answer() -> None:
            request = ChatRequest(messages=({"role": "user", "content": "hi"},), max_new_tokens=500)
            for piece in service.chat(request, CancelToken()):
                stamps.append(time.perf_counter())
                pieces.append(piece)

        reader = threading.Thread(target=answer)
        reader.start()
        deadline = time.monotonic() + 5
        while len(stamps) < 20 and time.monotonic() < deadline:
            time.sleep(0.005)
        started = time.perf_counter()
        completion = service.submit(CompletionRequest("file:///a.py", "def f():\n    ", use_cache=False))
        assert completion.result(timeout=10).raw == "y" * 40
        ended = time.perf_counter()
        reader.join(10)
        assert "".join(pieces) == words  # the answer went on to its end afterwards
        # at most the piece in flight when the completion began lands during it (0.4 s of it:
        # ~80 pieces at the chat's pace without the gate)
        during = [t for t in stamps if started + 0.05 < t < ended]
        assert len(during) <= 1, f"{len(during)} chat pieces while the completion ran"
        assert service.gate.pauses >= 1
    finally:
        service.close()


def test_without_a_chat_runtime_chat_shares_the_completion_model() -> None:
    service = CompletionService(_completion_model("y", pace=0.0))
    try:
        assert service.prepare_chat() is service.model
    finally:
        service.close()
