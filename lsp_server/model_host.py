"""The code model inside the server: loaded off the event loop, used by one generation at a time.

Generation runs on one worker thread per kind of work (the completion scheduler's for ghost
text, the host's for chat, explain and infill; two CPU cores are better spent on one request than
split between two), so a request that was superseded while it waited is dropped before it
starts. A model that cannot be loaded leaves the host empty with a one-sentence error; every
feature asks :meth:`ModelHost.require` and degrades instead of failing the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from lsp_server.errors import ModelUnavailableError
from lsp_server.imports import import_heavy, import_transformers, native_init
from lsp_server.settings import ModelSettings
from lsp_server.stall import report_if_stalled
from lsp_server.status import ComponentState

__all__ = ["ModelHost"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# The embedded model loads in seconds and a converted 15B one in about a minute: past this, the
# log gets every thread's stack (a hung native import would otherwise only show as "loading").
LOAD_STALL_S = 120.0


class ModelHost:
    """Holds the engine model, its load state and the generation thread."""

    def __init__(self, state: ComponentState) -> None:
        self.state = state
        self.model: Any | None = None
        self.scheduler: Any | None = None  # engine.scheduler.CompletionScheduler of the model
        self.settings: ModelSettings | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self._load_lock = threading.Lock()
        self._live: set[Any] = set()  # CancelTokens of generations in flight
        self._running: set[Future[Any]] = set()
        self._closed = False

    def _describe(self, settings: ModelSettings) -> str:
        if settings.backend == "http":
            return settings.url or settings.path or "(no url)"
        return settings.path or "(default)"

    def _load_local(self, settings: ModelSettings) -> Any:
        """Load the model of ``settings.path``, or the default model: the catalog's, falling back to
        the embedded one (saying why in ``state.fallback``) when it is not pulled or cannot load."""
        from engine import load_model
        from engine.catalog import default_model, fallback_model
        from engine.errors import EngineError

        if settings.path:
            return load_model(settings.path, backend=settings.backend, threads=settings.threads)
        chosen = default_model()
        self.state.path = chosen.reference
        if chosen.fallback_reason is None:
            try:
                return load_model(chosen.reference, backend=settings.backend, threads=settings.threads)
            except EngineError as exc:
                log.warning("the default model %s cannot be loaded: %s", chosen.reference, exc)
                chosen = fallback_model(f"the default model {chosen.reference} cannot be loaded ({exc})")
        self.state.fallback = chosen.fallback_reason
        self.state.path = chosen.reference
        log.warning("%s", chosen.fallback_reason)
        return load_model(chosen.reference, backend=settings.backend, threads=settings.threads)

    def load(self, settings: ModelSettings) -> Any:
        """Load (or reload) the model for ``settings``; blocking, call it from a worker thread.

        Records success or the error in ``state``; raises the engine's error on failure.
        """
        with self._load_lock:
            self.settings = settings
            self.state.backend = settings.backend
            self.state.loaded = False
            self.state.error = None
            self.state.fallback = None
            try:
                target = settings.url if settings.backend == "http" and settings.url else settings.path
                remote = settings.backend == "http"
                with report_if_stalled(f"loading the model {target or 'embedded'}", LOAD_STALL_S):
                    with native_init():
                        self.state.path = self._describe(settings)
                        from engine import load_model
                        from engine.scheduler import CompletionScheduler

                        if remote:
                            import_heavy("engine.backends.http")
                        else:
                            import_transformers()
                            model = self._load_local(settings)
                    if remote:  # its server may be slow to answer: nobody waits on the lock for it
                        model = load_model(target, backend=settings.backend, threads=settings.threads)
                    warmed = model.warm()  # the torch backend: no first prompt builds kernels
                    if warmed is not None:
                        log.info("prompt shapes warmed in %.2f s", warmed)
            except Exception as exc:
                self.state.error = str(exc) or exc.__class__.__name__
                old, old_scheduler = self.model, self.scheduler
                self.model = self.scheduler = None
                if old_scheduler is not None:
                    old_scheduler.close()
                if old is not None:
                    self._close(old)
                raise
            old, old_scheduler = self.model, self.scheduler
            self.model, self.scheduler = model, CompletionScheduler(model)
            if old_scheduler is not None:
                old_scheduler.close()
            if old is not None:
                self._close(old)
            self.state.loaded = True
            self.state.name = getattr(model, "name", None)
            self.state.backend = getattr(model, "backend_name", settings.backend)  # what "auto" chose
            log.info("model %s loaded from %s (%s)", self.state.name, self.state.path, self.state.backend)
            return model

    def set_prompt_budget(self, max_prompt_tokens: int, max_new_tokens: int) -> None:
        """Budget completion prompts to ``max_prompt_tokens``, within the model's context window."""
        model = self.model
        if model is not None:
            model.set_prompt_budget(max_prompt_tokens, max_new_tokens)

    def set_prefetch(self, enabled: bool) -> None:
        """Whether the idle time after a completion computes the one after the suggestion."""
        if self.scheduler is not None:
            self.scheduler.prefetch = enabled

    @staticmethod
    def _close(model: Any) -> None:
        try:
            model.close()
        except Exception:
            log.exception("closing the previous model failed")

    def require(self) -> Any:
        """The loaded model, or ModelUnavailableError saying why there is none."""
        model = self.model
        if model is None:
            why = self.state.error or "it is still loading"
            raise ModelUnavailableError(
                f"The code model is not available ({why}); check stackcoder.model.path, and "
                "`stackcoder models list` for the default model."
            )
        return model

    def open_token(self) -> Any:
        """A CancelToken for one generation, cancelled by :meth:`close` until it is released."""
        from engine.generation import CancelToken

        token = CancelToken()
        if self._closed:
            token.cancel()
        self._live.add(token)
        return token

    def release(self, token: Any) -> None:
        """Forget a token whose generation has ended."""
        self._live.discard(token)

    @contextmanager
    def cancel_token(self) -> Iterator[Any]:
        """``open_token`` ... ``release`` around one generation."""
        token = self.open_token()
        try:
            yield token
        finally:
            self.release(token)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the generation thread and await its result."""
        future = self._executor.submit(fn, *args)
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return await asyncio.wrap_future(future)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop every generation, wait (up to ``timeout`` seconds) for the generation thread to
        finish its step, then release the model. Returns False if a generation was still running.

        Native inference threads must not outlive the model: a process that exits while one is
        mid-generation aborts ("terminate called without an active exception").
        """
        self._closed = True
        for token in list(self._live):
            token.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        _done, running = concurrent.futures.wait(list(self._running), timeout=timeout)
        if self.scheduler is not None:
            self.scheduler.close()  # cancels its requests and joins its worker
            self.scheduler = None
        if running:
            log.warning("%d generation(s) did not stop within %.0f s", len(running), timeout)
            return False
        if self.model is not None:
            self._close(self.model)
            self.model = None
        return True
