"""The completion service's idle-time prefetch and warm-up and its cache-first answers, on a
scripted backend."""

from __future__ import annotations

import time

from helpers.paced_backend import PacedBackend

from engine.generation import CancelToken
from engine.model import CodeModel
from engine.service import CompletionService
from engine.types import CompletionCounters, CompletionRequest

PREFIX = "def area(width, height):\n    "
DOC = "file:///area.py"


def service_for(backend: PacedBackend, prefetch: bool = True) -> CompletionService:
    model = CodeModel(backend, name="paced", family="remote", fim=None)
    return CompletionService(model, prefetch=prefetch)


def at(prefix: str, max_new_tokens: int = 16) -> CompletionRequest:
    """A request of the document at the end of ``prefix``."""
    return CompletionRequest(DOC, prefix, "", max_new_tokens=max_new_tokens)


def test_the_idle_time_after_an_answer_completes_the_text_after_it() -> None:
    backend = PacedBackend(["result = width * height\n", "return result\n"])
    service = service_for(backend)
    try:
        first = service.submit(at(PREFIX)).result(timeout=10)
        assert first.text == "result = width * height" and not first.cached
        assert service.wait_idle(timeout=10)
        assert len(backend.prompts) == 2 and backend.prompts[1].endswith(PREFIX + first.text)
        assert service.counters().prefetched == 1 and len(service.prefetch_ms) == 1
        # accepting the suggestion: the completion after it is served without the model
        after = service.submit(at(PREFIX + first.text)).result(timeout=1)
        assert after.cached and after.text == service.model.cache.get(PREFIX + first.text, "")
        assert len(backend.prompts) == 2
        assert service.counters() == CompletionCounters(
            model_runs=1, stopped_runs=0, cache_hits=1, superseded=0, prefetched=1, warmed=0
        )
    finally:
        service.close()


def test_prefetch_off_runs_the_model_once_per_request() -> None:
    backend = PacedBackend(["result = width * height\n", "return result\n"])
    service = service_for(backend, prefetch=False)
    try:
        service.submit(at(PREFIX)).result(timeout=10)
        assert service.wait_idle(timeout=10)
        assert len(backend.prompts) == 1 and service.counters().prefetched == 0
    finally:
        service.close()


def test_a_new_request_stops_a_running_prefetch() -> None:
    backend = PacedBackend(["x = 1\n", "y = width + height + width + height\n", "z = 2\n"], pace=0.05)
    service = service_for(backend)
    try:
        service.submit(at(PREFIX)).result(timeout=10)
        deadline = time.monotonic() + 10
        while len(backend.prompts) < 2 and time.monotonic() < deadline:  # the prefetch has started
            time.sleep(0.01)
        assert len(backend.prompts) == 2
        slow = service.submit(at("def volume(w, h, d):\n    "))
        other = service.submit(at("def volume(w, h, d):\n    ")).result(timeout=10)
        assert slow.result(timeout=10).cancelled  # superseded by the same request sent again
        assert other.text == "z = 2" and not other.cancelled
        assert backend.streamed[1] < len("y = width + height + width + height\n")  # cut short
        assert service.wait_idle(timeout=10)
        assert service.counters().prefetched == 1  # the new answer's own prefetch, not the stopped one
        counters = service.counters()
        assert counters.superseded == 1  # a prefetch giving way is not a superseded request
        assert counters.model_runs == 2 and counters.stopped_runs <= 1
    finally:
        service.close()


def test_a_typed_through_answer_comes_at_once_and_keeps_the_prefetch_running() -> None:
    backend = PacedBackend(["result = width * height\n", "return result\n"], pace=0.02)
    service = service_for(backend)
    try:
        first = service.submit(at(PREFIX)).result(timeout=10)
        typed = service.submit(at(PREFIX + "re"))
        assert typed.done() and typed.result().cached and typed.result().text == first.text[2:]
        assert service.wait_idle(timeout=10)
        assert service.counters().prefetched == 1
        assert service.model.cache.get(PREFIX + first.text, "") is not None
    finally:
        service.close()


def test_a_warm_up_at_a_new_cursor_answers_its_first_keystroke_from_the_cache() -> None:
    backend = PacedBackend(["result = width * height\n"])
    service = service_for(backend, prefetch=False)
    try:
        assert service.warm([at(PREFIX)]) == 1
        assert service.wait_idle(timeout=10)
        assert len(backend.prompts) == 1 and service.counters().warmed == 1
        # the user types the first character of what the warm-up computed
        typed = service.submit(at(PREFIX + "r"))
        assert typed.done() and typed.result().cached and typed.result().text == "esult = width * height"
        assert service.warm([at(PREFIX)]) == 0  # the cache already has it
        assert len(backend.prompts) == 1
        counters = service.counters()
        assert counters.model_runs == 0 and counters.cache_hits == 1 and counters.warmed == 1
    finally:
        service.close()


WARM_LINE = "y = width + height + width + height\n"


def warming_up() -> tuple[PacedBackend, CompletionService]:
    """A service whose warm-up of two requests at ``PREFIX`` has begun its first completion
    (``WARM_LINE``, slowly); the scripted model's next answer is ``z = 2``."""
    backend = PacedBackend([WARM_LINE, "z = 2\n"], pace=0.05)
    service = service_for(backend, prefetch=False)
    assert service.warm([at(PREFIX, 32), at("other", 32)]) == 2
    assert backend.started.wait(timeout=10)
    return backend, service


def test_a_keystroke_elsewhere_stops_a_running_warm_up() -> None:
    backend, service = warming_up()
    try:
        answer = service.submit(at("def volume(w, h, d):\n    ")).result(timeout=10)
        assert answer.text == "z = 2" and not answer.cancelled  # the scripted model's second answer
        assert backend.streamed[0] < len(WARM_LINE)  # cut short
        assert service.wait_idle(timeout=10)
        counters = service.counters()
        assert counters.warmed == 0 and counters.model_runs == 1
        assert len(backend.prompts) == 2  # the second warm-up prompt never ran
        assert counters.superseded == 0  # a warm-up giving way is not a superseded request
    finally:
        service.close()


def test_a_keystroke_at_the_warm_cursor_takes_the_running_warm_up_from_the_cache() -> None:
    backend, service = warming_up()
    try:
        # typed what the warm-up is computing: it finishes, and the keystroke's answer is its rest
        answer = service.submit(at(PREFIX + "y = ")).result(timeout=10)
        assert answer.cached and answer.text == "width + height + width + height"
        assert backend.streamed[0] == len(WARM_LINE)
        assert service.wait_idle(timeout=10)
        assert len(backend.prompts) == 1  # neither the second warm-up nor the keystroke ran the model
        assert service.counters().warmed == 1 and service.counters().model_runs == 0
    finally:
        service.close()


def test_a_keystroke_at_the_warm_cursor_typing_something_else_runs_after_the_warm_up() -> None:
    backend, service = warming_up()
    try:
        answer = service.submit(at(PREFIX + "z")).result(timeout=10)
        assert answer.text == "z = 2" and not answer.cached
        assert backend.streamed[0] == len(WARM_LINE)  # finished first
        assert service.wait_idle(timeout=10)
        assert len(backend.prompts) == 2  # the warm-up's first prompt and the keystroke's
        assert service.counters().model_runs == 1
    finally:
        service.close()


def test_no_warm_up_while_the_user_is_typing() -> None:
    backend = PacedBackend(["result = width * height\n", "other = 1\n"], pace=0.05)
    service = service_for(backend, prefetch=False)
    try:
        live = service.submit(at(PREFIX))
        assert backend.started.wait(timeout=10)
        assert service.warm([at("def volume(w, h, d):\n    ")]) == 0
        assert not live.result(timeout=10).cancelled
        # a warm-up replaces an older warm-up of the same document
        assert service.warm([at("def volume(w, h, d):\n    ")]) == 1
        assert service.warm([at("def depth(w, h, d):\n    ")]) == 1
        assert service.wait_idle(timeout=10)
        assert len(backend.prompts) <= 3 and backend.prompts[-1].endswith("def depth(w, h, d):\n    ")
    finally:
        service.close()


def test_a_warm_up_runs_its_prompts_in_turn() -> None:
    backend = PacedBackend(["x = 1\n", "y = 2\n"])
    service = service_for(backend, prefetch=False)
    try:
        assert service.warm([at(PREFIX), at(PREFIX + "r")]) == 2
        assert service.wait_idle(timeout=10)
        assert backend.prompts[0].endswith(PREFIX) and backend.prompts[1].endswith(PREFIX + "r")
        assert service.counters().warmed == 2
        assert service.submit(at(PREFIX + "x")).result(timeout=1).cached
    finally:
        service.close()


def test_a_request_answered_from_the_cache_keeps_its_document_busy_until_it_ends() -> None:
    """A request ``begin`` started is not stopped by its own cache hit, and while it is live no
    warm-up starts for its document (the user is typing)."""
    backend = PacedBackend(["result = width * height\n", "other = 1\n"])
    service = service_for(backend, prefetch=False)
    try:
        service.submit(at(PREFIX)).result(timeout=10)
        cancel = service.begin(DOC)
        typed = service.submit(at(PREFIX + "r"), cancel)
        assert typed.done() and typed.result().cached and not cancel.cancelled
        assert service.busy(DOC) and service.warm([at("def volume(w, h, d):\n    ")]) == 0
        service.end(DOC, cancel)
        assert not service.busy(DOC) and service.warm([at("def volume(w, h, d):\n    ")]) == 1
        assert service.wait_idle(timeout=10) and len(backend.prompts) == 2
    finally:
        service.close()


def test_a_command_stops_the_warm_up_holding_the_runtime() -> None:
    backend = PacedBackend(["y = width + height + width + height\n", "z = 2\n"], pace=0.05)
    service = service_for(backend, prefetch=False)
    try:
        assert service.warm([at(PREFIX, 32)]) == 1
        assert backend.started.wait(timeout=10)
        answer = service.infill(at("def volume(w, h, d):\n    "), CancelToken())
        assert answer.text == "z = 2"
        assert backend.streamed[0] < len("y = width + height + width + height\n")  # cut short
        assert service.wait_idle(timeout=10) and service.counters().warmed == 0
    finally:
        service.close()
