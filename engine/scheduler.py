"""Scheduling of completion requests: the newest request for a document supersedes older ones.

While the user types, every keystroke asks for a completion; only the last one matters. Submitting
a request for a document cancels that document's previous request: a queued one never runs, a
running one stops within one decoding step (its ``Completion`` comes back with ``cancelled=True``).
Requests for different documents run side by side on a small worker pool.

A request the typed-through cache can answer is answered at once, without waiting for the pool.
With ``prefetch`` on, the idle time after an answer computes the completion at the end of the
suggestion: once the user has typed or accepted it, the next suggestion is already in the cache.
A prefetch gives way to the document's next request (it is cancelled unless the cache answers
that request), so it never delays one by more than its prompt processing and one decoding step.

``warm`` does the same for a place the cursor has moved to: the completion there is computed
before the first keystroke, so that keystroke finds its prompt's head processed (the lines above
the cursor do not change while the user types on its line) or its answer in the cache.

    scheduler = CompletionScheduler(model)
    future = scheduler.submit("file:///a.py", prefix, suffix)
    completion = future.result()                  # or: await scheduler.complete(...)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from engine.generation import CancelToken
from engine.model import CodeModel
from engine.types import Completion

log = logging.getLogger(__name__)


# A completion to compute in idle time: prefix, suffix and keyword arguments of ``submit``.
Prompt = tuple[str, str, dict[str, Any]]


@dataclass
class _Pending:
    request_id: int
    cancel: CancelToken
    future: Future[Any]
    prefetch: bool = False  # a prefetch or a warm-up, which any request of the document stops


@dataclass(frozen=True)
class _Job:
    """One queued completion (or prefetch) of a document."""

    document: str
    request_id: int
    cancel: CancelToken
    prefix: str
    suffix: str
    kwargs: dict[str, Any]


class CompletionScheduler:
    """Runs ``model.complete`` requests, one live request per document.

    Args:
        model: the loaded model.
        workers: requests running at the same time (for different documents).
        prefetch: after each answered request, complete the text ahead of the suggestion in the
            idle time (single-choice requests with the cache on).
    """

    def __init__(self, model: CodeModel, *, workers: int = 1, prefetch: bool = True) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.model = model
        self.prefetch = prefetch
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stackcoder-complete")
        self._lock = threading.Lock()
        self._latest: dict[str, _Pending] = {}
        self._next_id = 0
        self.superseded = 0  # requests cancelled by a newer one (for logs and benchmarks)
        self.model_runs = 0  # requests (not prefetches) the model answered to the end
        self.stopped_runs = 0  # requests whose model run a newer request stopped
        self.cache_hits = 0  # requests answered from the completion cache
        self.prefetched = 0  # prefetches that ran the model to the end
        self.prefetch_ms: list[float] = []  # their durations (for benchmarks)
        self.warmed = 0  # warm-ups at a cursor the user moved to that ran the model to the end

    def submit(self, document: str, prefix: str, suffix: str = "", **kwargs: Any) -> Future[Completion]:
        """Queue a completion for ``document`` (keyword arguments as ``CodeModel.complete``),
        cancelling the document's previous request. Returns a future of the ``Completion``."""
        cancel = kwargs.pop("cancel", None) or CancelToken()
        if kwargs.get("use_cache", True) and kwargs.get("n", 1) == 1:
            hit = self.from_cache(document, prefix, suffix)
            if hit is not None:
                done: Future[Completion] = Future()
                done.set_result(hit)
                return done
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            previous = self._latest.get(document)
            if previous is not None:
                self._supersede(previous, f"request {request_id}")
            future = self._pool.submit(self._run, _Job(document, request_id, cancel, prefix, suffix, kwargs))
            self._latest[document] = _Pending(request_id, cancel, future)
        return future

    def from_cache(self, document: str, prefix: str, suffix: str = "") -> Completion | None:
        """The completion cache's answer for this cursor, or None; never runs the model. A hit
        answers the document's newest keystroke, so its live request stops (a prefetch or warm-up
        in flight goes on)."""
        hit = self.model.cached(prefix, suffix)
        if hit is not None:
            with self._lock:
                previous = self._latest.get(document)
                if previous is not None and not previous.prefetch:
                    self._supersede(previous, "a cached answer")
                self.cache_hits += 1
        return hit

    def _supersede(self, previous: _Pending, by: str) -> None:
        if previous.future.done():
            return
        previous.cancel.cancel()
        if not previous.prefetch:
            self.superseded += 1
        log.debug("%s supersedes %d", by, previous.request_id)

    def _run(self, job: _Job) -> Completion:
        start = time.perf_counter()
        completion: Completion | None = None
        try:
            if job.cancel.cancelled:  # superseded while queued: never touch the model
                return Completion(text="", model=self.model.name, latency_ms=0.0, cancelled=True)
            # complete() asks the cache again: a prefetch may have filled it while this waited
            completion = self.model.complete(job.prefix, job.suffix, cancel=job.cancel, **job.kwargs)
            if job.cancel.cancelled:
                completion.cancelled = True
            with self._lock:
                if completion.cached:
                    self.cache_hits += 1
                elif completion.cancelled:
                    self.stopped_runs += 1
                else:
                    self.model_runs += 1
            log.debug(
                "request %d for %s done in %.0f ms (cancelled=%s)",
                job.request_id,
                job.document,
                (time.perf_counter() - start) * 1000,
                completion.cancelled,
            )
            return completion
        finally:
            with self._lock:
                if (
                    self._forget(job)
                    and completion is not None
                    and self._wants_prefetch(completion, job.kwargs)
                ):
                    self._queue_prefetch(job, job.prefix + completion.text)

    def _forget(self, job: _Job) -> bool:
        """Drop ``job`` as its document's live request (lock held); False when a newer one took its place."""
        pending = self._latest.get(job.document)
        if pending is None or pending.request_id != job.request_id:
            return False
        del self._latest[job.document]
        return True

    def _wants_prefetch(self, completion: Completion, kwargs: dict[str, Any]) -> bool:
        return (
            self.prefetch
            and bool(completion.text)
            and not completion.cancelled
            and kwargs.get("use_cache", True)
            and kwargs.get("n", 1) == 1
        )

    def _queue_prefetch(self, after: _Job, prefix: str) -> None:
        """Queue the completion at the end of ``after``'s suggestion (lock held)."""
        self._queue_idle(after.document, [(prefix, after.suffix, after.kwargs)], warm=False)

    def _queue_idle(self, document: str, prompts: list[Prompt], *, warm: bool) -> None:
        """Queue a prefetch or warm-up of ``prompts`` for ``document`` as its live job (lock held)."""
        self._next_id += 1
        prefix, suffix, kwargs = prompts[0]
        job = _Job(document, self._next_id, CancelToken(), prefix, suffix, kwargs)
        future = self._pool.submit(self._run_idle, job, prompts, warm)
        self._latest[document] = _Pending(job.request_id, job.cancel, future, prefetch=True)

    def warm(self, document: str, prompts: list[Prompt]) -> int:
        """Compute completions a cursor the user moved to may ask for, before the first keystroke.

        ``prompts`` are (prefix, suffix, keyword arguments of ``submit``) triples, most likely
        first; they run one after the other, with one choice and the cache on. Prompts the cache
        already answers are left out; nothing is queued while a request of the document is live
        (the user is typing); a prefetch or an older warm-up of the document is stopped. Returns
        how many prompts were queued.
        """
        todo = [
            (prefix, suffix, {**kwargs, "use_cache": True, "n": 1})
            for prefix, suffix, kwargs in prompts
            if self.model.cached(prefix, suffix) is None
        ]
        if not todo:
            return 0
        with self._lock:
            previous = self._latest.get(document)
            if previous is not None and not previous.future.done():
                if not previous.prefetch:
                    return 0
                previous.cancel.cancel()
            self._queue_idle(document, todo, warm=True)
        return len(todo)

    def _run_idle(self, job: _Job, prompts: list[Prompt], warm: bool) -> None:
        """Run a prefetch or warm-up: each prompt in turn until the job is cancelled."""
        try:
            for prefix, suffix, kwargs in prompts:
                if job.cancel.cancelled:
                    return
                start = time.perf_counter()
                # a completion the cache already holds comes back at once, without the model
                completion = self.model.complete(prefix, suffix, cancel=job.cancel, **kwargs)
                if completion.cached or completion.cancelled or job.cancel.cancelled:
                    continue
                with self._lock:
                    if warm:
                        self.warmed += 1
                    else:
                        self.prefetched += 1
                        self.prefetch_ms.append((time.perf_counter() - start) * 1000)
        except Exception:
            log.exception("%s for %s failed", "warm-up" if warm else "prefetch", job.document)
        finally:
            with self._lock:
                self._forget(job)

    def counters(self) -> dict[str, int]:
        """How requests were answered so far: model runs (finished and stopped), cache hits,
        superseded requests, and prefetches and warm-ups run."""
        with self._lock:
            return {
                "model_runs": self.model_runs,
                "stopped_runs": self.stopped_runs,
                "cache_hits": self.cache_hits,
                "superseded": self.superseded,
                "prefetched": self.prefetched,
                "warmed": self.warmed,
            }

    async def complete(self, document: str, prefix: str, suffix: str = "", **kwargs: Any) -> Completion:
        """``submit`` for asyncio callers (the language server)."""
        return await asyncio.wrap_future(self.submit(document, prefix, suffix, **kwargs))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no request or prefetch is queued or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                futures = [p.future for p in self._latest.values()]
            if not futures:
                return True
            for future in futures:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    future.exception(timeout=remaining)
                except TimeoutError:
                    return False
                except CancelledError:
                    continue

    def cancel(self, document: str) -> None:
        """Cancel the document's live request or prefetch, if any (e.g. the document was closed)."""
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
