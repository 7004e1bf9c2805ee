"""Scheduling of completion requests: the newest request for a document supersedes older ones.

While the user types, every keystroke asks for a completion; only the last one matters. Submitting
a request for a document cancels that document's previous request: a queued one never runs, a
running one stops within one decoding step (its ``Completion`` comes back with ``cancelled=True``).
Requests for different documents run side by side on a small worker pool.

    scheduler = CompletionScheduler(model)
    future = scheduler.submit("file:///a.py", prefix, suffix)
    completion = future.result()                  # or: await scheduler.complete(...)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from engine.generation import CancelToken
from engine.model import CodeModel
from engine.types import Completion

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    request_id: int
    cancel: CancelToken
    future: Future[Completion]


class CompletionScheduler:
    """Runs ``model.complete`` requests, one live request per document.

    Args:
        model: the loaded model.
        workers: requests running at the same time (for different documents).
    """

    def __init__(self, model: CodeModel, *, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.model = model
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stackcoder-complete")
        self._lock = threading.Lock()
        self._latest: dict[str, _Pending] = {}
        self._next_id = 0
        self.superseded = 0  # requests cancelled by a newer one (for logs and benchmarks)

    def submit(self, document: str, prefix: str, suffix: str = "", **kwargs: Any) -> Future[Completion]:
        """Queue a completion for ``document`` (keyword arguments as ``CodeModel.complete``),
        cancelling the document's previous request. Returns a future of the ``Completion``."""
        cancel = kwargs.pop("cancel", None) or CancelToken()
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            previous = self._latest.get(document)
            if previous is not None and not previous.future.done():
                previous.cancel.cancel()
                self.superseded += 1
                log.debug("request %d supersedes %d for %s", request_id, previous.request_id, document)
            future = self._pool.submit(self._run, document, request_id, cancel, prefix, suffix, kwargs)
            self._latest[document] = _Pending(request_id, cancel, future)
        return future

    def _run(
        self,
        document: str,
        request_id: int,
        cancel: CancelToken,
        prefix: str,
        suffix: str,
        kwargs: dict[str, Any],
    ) -> Completion:
        start = time.perf_counter()
        try:
            if cancel.cancelled:  # superseded while queued: never touch the model
                return Completion(text="", model=self.model.name, latency_ms=0.0, cancelled=True)
            completion = self.model.complete(prefix, suffix, cancel=cancel, **kwargs)
            if cancel.cancelled:
                completion.cancelled = True
            log.debug(
                "request %d for %s done in %.0f ms (cancelled=%s)",
                request_id,
                document,
                (time.perf_counter() - start) * 1000,
                completion.cancelled,
            )
            return completion
        finally:
            with self._lock:
                pending = self._latest.get(document)
                if pending is not None and pending.request_id == request_id:
                    del self._latest[document]

    async def complete(self, document: str, prefix: str, suffix: str = "", **kwargs: Any) -> Completion:
        """``submit`` for asyncio callers (the language server)."""
        return await asyncio.wrap_future(self.submit(document, prefix, suffix, **kwargs))

    def cancel(self, document: str) -> None:
        """Cancel the document's live request, if any (e.g. the document was closed)."""
        with self._lock:
            pending = self._latest.get(document)
        if pending is not None:
            pending.cancel.cancel()

    def close(self) -> None:
        """Cancel every live request and stop the workers."""
        with self._lock:
            pending = list(self._latest.values())
        for item in pending:
            item.cancel.cancel()
        self._pool.shutdown(wait=True)
