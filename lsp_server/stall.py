"""Say what every thread is doing when a step that should take seconds has not ended.

Loading the model imports native libraries (CTranslate2, torch) while other parts of the server
start on other threads; should that ever hang, the server's log must show where, instead of a
status that says "loading" for ever.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["thread_stacks", "report_if_stalled"]

log = logging.getLogger(__name__)


def thread_stacks() -> str:
    """The Python stack of every thread, each under its name."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame))
        parts.append(f"thread {names.get(ident, ident)}:\n{stack}")
    return "\n".join(parts)


@contextmanager
def report_if_stalled(what: str, after_s: float) -> Iterator[None]:
    """Run the body; if it is still running after ``after_s`` seconds, log a warning with every
    thread's stack (a slow load is named, a hung one located). The body is never interrupted."""
    started = time.monotonic()

    def report() -> None:
        log.warning(
            "%s has taken %.0f s so far; what each thread is doing:\n%s",
            what,
            time.monotonic() - started,
            thread_stacks(),
        )

    timer = threading.Timer(after_s, report)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
