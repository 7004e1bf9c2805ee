"""A scripted backend for tests of the completion service: answers at a set pace, cancellable."""

from __future__ import annotations

import threading
import time

from engine.backends.base import Backend


class PacedBackend(Backend):
    """Answers completion ``i`` with ``answers[i]`` one character at a time, ``pace`` seconds per
    character, stopping when cancelled; records the prompts and how many characters each got."""

    name = "paced"
    context_window = 2048
    tokenizer = None

    def __init__(self, answers: list[str], pace: float = 0.0) -> None:
        self.answers = answers
        self.pace = pace
        self.prompts: list[str] = []
        self.streamed: list[int] = []
        self.started = threading.Event()

    def stream(self, prompt, config, cancel=None):
        answer = self.answers[min(len(self.prompts), len(self.answers) - 1)]
        self.prompts.append(prompt)
        self.streamed.append(0)
        self.started.set()
        for char in answer:
            if cancel is not None and cancel.cancelled:
                return
            time.sleep(self.pace)
            self.streamed[-1] += 1
            yield char

    def close(self) -> None:
        pass
