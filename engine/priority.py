"""Ghost text before chat: a chat answer pauses between tokens while a completion runs.

Two CPU cores run one model pass well and two passes badly: llama.cpp's threads spin while they
wait for each other, so two runtimes side by side each slow down more than twice. A suggestion is
worthless once the user has typed on, while a chat answer that pauses for a few hundred
milliseconds is not noticed. So a completion holds the gate while it runs (``foreground``), and a
chat answer waits at the gate before each next token and each chunk of its prompt
(``wait_turn``): ghost text runs alone, at the speed it has with no chat at all, and the answer
resumes where it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager

from engine.generation import CancelToken

__all__ = ["ForegroundGate"]


class ForegroundGate:
    """Lets foreground work (completions) run alone; background work (chat) waits its turn."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._active = 0
        self.pauses = 0  # times background work waited
        self.paused_s = 0.0  # seconds it waited in all

    @property
    def busy(self) -> bool:
        """Whether foreground work is running now."""
        with self._changed:
            return self._active > 0

    @contextmanager
    def foreground(self) -> Iterator[None]:
        """Run the block as foreground work: background work waits until it ends."""
        with self._changed:
            self._active += 1
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                if self._active == 0:
                    self._changed.notify_all()

    def wait_turn(self, cancel: CancelToken | None = None) -> None:
        """Block while foreground work runs (or until ``cancel`` is cancelled)."""
        with self._changed:
            if self._active == 0:
                return
            started = time.perf_counter()
            self.pauses += 1
            while self._active and not (cancel is not None and cancel.cancelled):
                self._changed.wait(0.05)
            self.paused_s += time.perf_counter() - started

    def background(
        self, pieces: Generator[str, None, None], cancel: CancelToken | None = None
    ) -> Generator[str, None, None]:
        """``pieces``, each next one computed only when no foreground work runs; closing this
        closes ``pieces``."""
        try:
            while True:
                self.wait_turn(cancel)
                try:
                    piece = next(pieces)
                except StopIteration:
                    return
                yield piece
        finally:
            pieces.close()
