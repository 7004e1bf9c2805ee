"""Scheduling of completion requests: the newest request for a document supersedes older ones.

While the user types, every keystroke asks for a completion; only the last one matters. Each
document has at most one live request, from ``begin`` (the request arrived; the caller may still
gather its context) or ``submit`` until its answer. A newer request stops it: one being prepared
is never submitted (its token is cancelled), a queued one never runs, a running one stops within
one decoding step (its ``Completion`` comes back with ``cancelled=True``). Requests for different
documents run side by side on a small worker pool.

A request the typed-through cache can answer is answered at once, without waiting for the pool.
With ``prefetch`` on, the idle time after an answer computes the completion at the end of the
suggestion: once the user has typed or accepted it, the next suggestion is already in the cache.
A prefetch gives way to the document's next request (it is cancelled unless the cache answers
that request), so it never delays one by more than its prompt processing and one decoding step.

``warm`` does the same for a place the cursor has moved to: the completion there is computed
before the first keystroke, so that keystroke finds its prompt's head processed (the lines above
the cursor do not change while the user types on its line) or its answer in the cache.

The scheduler is the engine's part of ``engine.service.CompletionService``, which callers use.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass

from engine.generation import CancelToken
from engine.model import CodeModel
from engine.priority import ForegroundGate
from engine.types import Completion, CompletionCounters, CompletionRequest

log = logging.getLogger(__name__)


@dataclass
class _Live:
    """A document's live request, prefetch or warm-up."""

    request_id: int
    cancel: CancelToken
    future: Future[Completion] | Future[None] | None = None  # None while the caller prepares it
    idle: bool = False  # a prefetch or a warm-up, which any request of the document stops
    current: CompletionRequest | None = None  # the completion a prefetch or warm-up is computing
    finishing: bool = False  # superseded: a prefetch or warm-up that ends after ``current``

    @property
    def running(self) -> bool:
        """Not answered yet (being prepared, queued or generating)."""
        return self.future is None or not self.future.done()


@dataclass(frozen=True)
class _Job:
    """One queued completion request."""

    request_id: int
    request: CompletionRequest
    cancel: CancelToken


def _extends(request: CompletionRequest, earlier: CompletionRequest | None) -> bool:
    """Whether ``request`` is at ``earlier``'s cursor or after text typed there (so that
    ``earlier``'s completion may answer it through the typed-through cache)."""
    return (
        earlier is not None and request.suffix == earlier.suffix and request.prefix.startswith(earlier.prefix)
    )


def _answered(completion: Completion) -> Future[Completion]:
    done: Future[Completion] = Future()
    done.set_result(completion)
    return done


class CompletionScheduler:
    """Runs completion requests on ``model``, one live request per document.

    Args:
        model: the loaded model.
        workers: requests running at the same time (for different documents).
        prefetch: after each answered request, complete the text ahead of the suggestion in the
            idle time (single-choice requests with the cache on).
        gate: held while the model runs a request, prefetch or warm-up, so that a chat answer
            sharing the CPU waits (``engine.priority``).
    """

    def __init__(
        self,
        model: CodeModel,
        *,
        workers: int = 1,
        prefetch: bool = True,
        gate: ForegroundGate | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.model = model
        self._gate = gate or ForegroundGate()
        self.prefetch = prefetch
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stackcoder-complete")
        self._lock = threading.Lock()
        self._latest: dict[str, _Live] = {}
        # superseded prefetches and warm-ups finishing their completion, until the request that
        # superseded them shows whether it can use it
        self._finishing: dict[str, _Live] = {}
        self._next_id = 0
        self.superseded = 0
        self.model_runs = 0
        self.stopped_runs = 0
        self.cache_hits = 0
        self.prefetched = 0
        self.prefetch_ms: list[float] = []  # durations of the prefetches that ran (for benchmarks)
        self.warmed = 0

    # ------------------------------------------------------------------ a document's live request

    def begin(self, document: str) -> CancelToken:
        """A request for ``document`` arrived: stop the document's previous one and return the
        new one's token, to ``submit`` it with once its context is gathered (then ``end``)."""
        with self._lock:
            self._next_id += 1
            self._replace(document, _Live(self._next_id, CancelToken()), f"request {self._next_id}")
            return self._latest[document].cancel

    def end(self, document: str, cancel: CancelToken) -> None:
        """The request ``begin`` returned ``cancel`` for is over; a submitted one ends by itself."""
        with self._lock:
            live = self._latest.get(document)
            if live is not None and live.cancel is cancel and live.future is None:
                del self._latest[document]

    def busy(self, document: str) -> bool:
        """Whether a request of ``document`` (not a prefetch or warm-up) is live: the user is typing."""
        with self._lock:
            live = self._latest.get(document)
            return live is not None and not live.idle and live.running

    def _replace(self, document: str, live: _Live, by: str) -> None:
        """Make ``live`` the document's live entry, stopping the one before (lock held)."""
        previous = self._latest.get(document)
        if previous is not None:
            self._supersede(document, previous, by)
        self._latest[document] = live

    def _supersede(self, document: str, previous: _Live, by: str) -> None:
        """Stop ``previous`` (lock held); a prefetch or warm-up computing a completion finishes
        that one first, should it answer the superseding request (``submit`` decides)."""
        if not previous.running:
            return
        if previous.idle and previous.current is not None:
            previous.finishing = True
            self._finishing[document] = previous
            log.debug("%s lets %d finish its completion", by, previous.request_id)
            return
        previous.cancel.cancel()
        if not previous.idle:
            self.superseded += 1
        log.debug("%s supersedes %d", by, previous.request_id)

    # ------------------------------------------------------------------ requests

    def submit(self, request: CompletionRequest, cancel: CancelToken | None = None) -> Future[Completion]:
        """Queue ``request``, superseding its document's previous request (``cancel``: the token
        ``begin`` returned, else a new one). Returns a future of the ``Completion``."""
        cancel = cancel or CancelToken()
        if request.cacheable:
            hit = self.from_cache(request, cancel)
            if hit is not None:
                with self._lock:
                    finishing = self._finishing.pop(request.document, None)
                if finishing is not None:
                    finishing.cancel.cancel()
                return _answered(hit)
        with self._lock:
            if cancel.cancelled:  # superseded while its context was gathered
                return _answered(Completion(text="", model=self.model.name, latency_ms=0.0, cancelled=True))
            live = self._latest.get(request.document)
            if live is None or live.cancel is not cancel or live.future is not None:
                self._next_id += 1
                live = _Live(self._next_id, cancel)
                self._replace(request.document, live, f"request {live.request_id}")
            finishing = self._finishing.pop(request.document, None)
            future = self._pool.submit(self._run, _Job(live.request_id, request, cancel))
            live.future = future
        if finishing is not None and not (request.cacheable and _extends(request, finishing.current)):
            finishing.cancel.cancel()  # its completion cannot answer this request
        return future

    def from_cache(self, request: CompletionRequest, cancel: CancelToken | None = None) -> Completion | None:
        """The completion cache's answer for this cursor, or None; never runs the model. A hit
        answers the document's newest keystroke, so its live request stops (unless it is the one
        ``cancel`` belongs to; a prefetch or warm-up in flight goes on)."""
        hit = self.model.cached(request.prefix, request.suffix)
        if hit is not None:
            with self._lock:
                live = self._latest.get(request.document)
                if live is not None and not live.idle and live.cancel is not cancel:
                    self._supersede(request.document, live, "a cached answer")
                self.cache_hits += 1
        return hit

    def _run(self, job: _Job) -> Completion:
        start = time.perf_counter()
        completion: Completion | None = None
        try:
            if job.cancel.cancelled:  # superseded while queued: never touch the model
                return Completion(text="", model=self.model.name, latency_ms=0.0, cancelled=True)
            # the model asks the cache again: a prefetch may have filled it while this waited
            with self._gate.foreground():
                completion = self.model.complete_request(job.request, job.cancel)
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
                job.request.document,
                (time.perf_counter() - start) * 1000,
                completion.cancelled,
            )
            return completion
        finally:
            with self._lock:
                if (
                    self._forget(job.request.document, job.request_id)
                    and completion is not None
                    and self._wants_prefetch(completion, job.request)
                ):
                    after = dataclasses.replace(job.request, prefix=job.request.prefix + completion.text)
                    self._queue_idle([after], warm=False)

    def _forget(self, document: str, request_id: int) -> bool:
        """Drop ``request_id`` as its document's live entry (lock held); False when a newer one
        took its place."""
        live = self._latest.get(document)
        if live is None or live.request_id != request_id:
            return False
        del self._latest[document]
        return True

    def _wants_prefetch(self, completion: Completion, request: CompletionRequest) -> bool:
        return self.prefetch and bool(completion.text) and not completion.cancelled and request.cacheable

    # ------------------------------------------------------------------ idle-time work

    def warm(self, requests: Sequence[CompletionRequest]) -> int:
        """Compute completions a cursor the user moved to may ask for, before the first keystroke.

        ``requests`` are for one document, most likely first; they run one after the other, with
        one choice and the cache on. Requests the cache already answers are left out; nothing is
        queued while a request of the document is live (the user is typing); a prefetch or an
        older warm-up of the document is stopped. Returns how many requests were queued.
        """
        if len({r.document for r in requests}) > 1:
            raise ValueError("warm takes the requests of one document")
        todo = [
            dataclasses.replace(r, use_cache=True, choices=1)
            for r in requests
            if self.model.cached(r.prefix, r.suffix) is None
        ]
        if not todo:
            return 0
        with self._lock:
            previous = self._latest.get(todo[0].document)
            if previous is not None and previous.running:
                if not previous.idle:
                    return 0
                previous.cancel.cancel()
            self._queue_idle(todo, warm=True)
        return len(todo)

    def _queue_idle(self, requests: list[CompletionRequest], *, warm: bool) -> None:
        """Queue a prefetch or warm-up of ``requests`` as their document's live entry (lock held)."""
        self._next_id += 1
        live = _Live(self._next_id, CancelToken(), idle=True)
        live.future = self._pool.submit(self._run_idle, live, requests, warm)
        self._latest[requests[0].document] = live

    def _run_idle(self, live: _Live, requests: list[CompletionRequest], warm: bool) -> None:
        """Run a prefetch or warm-up: each request in turn until it is cancelled. A warm-up first
        processes the cursor's document window (``CodeModel.warm_window``), so that its
        completions and those of places near it evaluate only their suffix, and last the SPM
        prompt of its most likely request, so that typing there evaluates only what was typed.

        Superseded while computing a completion, it finishes that one (the request that superseded
        it waits in the queue and may find its answer in the cache) and stops."""
        cancel = live.cancel
        try:
            if warm:
                with self._gate.foreground():
                    self.model.warm_window(requests[0], cancel)
            for request in requests:
                if cancel.cancelled or live.finishing:
                    return
                start = time.perf_counter()
                live.current = request
                # a completion the cache already holds comes back at once, without the model
                with self._gate.foreground():
                    completion = self.model.complete_request(request, cancel)
                live.current = None
                if completion.cached or completion.cancelled or cancel.cancelled:
                    continue
                with self._lock:
                    if warm:
                        self.warmed += 1
                    else:
                        self.prefetched += 1
                        self.prefetch_ms.append((time.perf_counter() - start) * 1000)
            if warm and self.model.fim_order == "auto" and not (cancel.cancelled or live.finishing):
                # speculative, and long: a chat answer streaming meanwhile does not wait for it
                self.model.hold_prompt(requests[0], "spm", cancel)
        except Exception:
            log.exception("%s for %s failed", "warm-up" if warm else "prefetch", requests[0].document)
        finally:
            live.current = None
            with self._lock:
                self._forget(requests[0].document, live.request_id)

    # ------------------------------------------------------------------ state

    def counters(self) -> CompletionCounters:
        """How requests were answered so far."""
        with self._lock:
            return CompletionCounters(
                model_runs=self.model_runs,
                stopped_runs=self.stopped_runs,
                cache_hits=self.cache_hits,
                superseded=self.superseded,
                prefetched=self.prefetched,
                warmed=self.warmed,
            )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no request or prefetch is queued or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                entries = [*self._latest.values(), *self._finishing.values()]
                futures = [live.future for live in entries if live.future is not None and live.running]
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
            entries = [self._latest.get(document), self._finishing.pop(document, None)]
        for live in entries:
            if live is not None:
                live.cancel.cancel()

    def stop_idle(self) -> None:
        """Cancel every prefetch and warm-up (a command needs the runtime now)."""
        with self._lock:
            entries = [live for live in self._latest.values() if live.idle]
            entries += self._finishing.values()
        for live in entries:
            live.cancel.cancel()

    def close(self) -> None:
        """Cancel every live request and stop the workers."""
        with self._lock:
            live = [*self._latest.values(), *self._finishing.values()]
        for item in live:
            item.cancel.cancel()
        self._pool.shutdown(wait=True)
