"""The engine inside the server: its ``CompletionService``, loaded off the event loop.

Generation runs on one worker thread per kind of work: the service's for ghost text (where a
newer request of a document supersedes the older one), the host's for chat, explain and infill
(two CPU cores are better spent on one request than split between more). A model that cannot be
loaded leaves the host empty with a one-sentence error; every feature asks
:meth:`ModelHost.require` and degrades instead of failing the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from lsp_server.errors import ModelUnavailableError
from lsp_server.imports import import_heavy, import_transformers, native_init
from lsp_server.settings import CompletionSettings, ModelSettings
from lsp_server.stall import report_if_stalled
from lsp_server.status import ComponentState

if TYPE_CHECKING:
    from engine.generation import CancelToken
    from engine.service import CompletionService

__all__ = ["ModelHost"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# The embedded model loads in seconds and a converted 15B one in about a minute: past this, the
# log gets every thread's stack (a hung native import would otherwise only show as "loading").
LOAD_STALL_S = 120.0


class ModelHost:
    """Holds the engine's completion service, its load state and the thread for user commands."""

    def __init__(self, state: ComponentState) -> None:
        self.state = state
        self.service: CompletionService | None = None
        self.settings: ModelSettings | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self._load_lock = threading.Lock()
        self._live: set[CancelToken] = set()  # tokens of the commands' generations in flight
        self._running: set[Future[object]] = set()
        self._closed = False

    def _describe(self, settings: ModelSettings) -> str:
        if settings.backend == "http":
            return settings.url or settings.path or "(no url)"
        return settings.path or "(default)"

    def _load_local(self, settings: ModelSettings) -> CompletionService:
        """Load the model of ``settings.path``, or the default model: the catalog's, falling back to
        the embedded one (saying why in ``state.fallback``) when it is not pulled or cannot load."""
        from engine.catalog import default_model, fallback_model
        from engine.errors import EngineError
        from engine.service import CompletionService

        def load(reference: str) -> CompletionService:
            return CompletionService.load(
                reference,
                backend=settings.backend,
                threads=settings.threads,
                chat_reference=settings.chat_path,
            )

        if settings.path:
            return load(settings.path)
        chosen = default_model()
        self.state.path = chosen.reference
        if chosen.fallback_reason is None:
            try:
                return load(chosen.reference)
            except EngineError as exc:
                log.warning("the default model %s cannot be loaded: %s", chosen.reference, exc)
                chosen = fallback_model(f"the default model {chosen.reference} cannot be loaded ({exc})")
        self.state.fallback = chosen.fallback_reason
        self.state.path = chosen.reference
        log.warning("%s", chosen.fallback_reason)
        return load(chosen.reference)

    def load(self, settings: ModelSettings) -> CompletionService:
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
                        from engine.service import CompletionService

                        if remote:
                            import_heavy("engine.backends.http")
                        else:
                            import_transformers()
                            service = self._load_local(settings)
                    if remote:  # its server may be slow to answer: nobody waits on the lock for it
                        service = CompletionService.load(
                            target,
                            backend=settings.backend,
                            threads=settings.threads,
                            chat_reference=settings.chat_path,
                        )
                    try:
                        # kernels built, drafts measured: no first prompt pays for them
                        warmed = service.prepare_kernels()
                    except BaseException:
                        service.close()
                        raise
                    if warmed is not None:
                        log.info("backend prepared in %.2f s", warmed)
            except Exception as exc:
                self.state.error = str(exc) or exc.__class__.__name__
                old, self.service = self.service, None
                if old is not None:
                    self._close(old)
                raise
            old, self.service = self.service, service
            if old is not None:
                self._close(old)
            self.state.loaded = True
            self.state.name = service.model_name
            self.state.backend = service.backend_name  # what "auto" chose
            log.info("model %s loaded from %s (%s)", self.state.name, self.state.path, self.state.backend)
            # the chat runtime loads on the commands' thread now, before the first question
            self.state.chat = None
            self._executor.submit(self._prepare_chat, service)
            return service

    def _prepare_chat(self, service: CompletionService) -> None:
        from engine.errors import EngineError

        try:
            service.prepare_chat()
            if service is self.service:
                self.state.chat = service.chat_model_name
            log.info("chat runs on %s", service.chat_model_name)
        except EngineError as exc:  # said again to the user who asks a question
            log.warning("the chat model cannot be loaded: %s", exc)

    def configure(self, settings: CompletionSettings) -> None:
        """Apply the completion settings (prompt budget, prefetch) to the loaded service."""
        service = self.service
        if service is not None:
            service.configure(
                max_prompt_tokens=settings.max_prompt_tokens,
                max_new_tokens=settings.max_new_tokens,
                prefetch=settings.prefetch,
            )

    @staticmethod
    def _close(service: CompletionService) -> None:
        try:
            service.close()
        except Exception:
            log.exception("closing the previous model failed")

    def require(self) -> CompletionService:
        """The loaded service, or ModelUnavailableError saying why there is none."""
        service = self.service
        if service is None:
            why = self.state.error or "it is still loading"
            raise ModelUnavailableError(
                f"The code model is not available ({why}); check stackcoder.model.path, and "
                "`stackcoder models list` for the default model."
            )
        return service

    def open_token(self) -> CancelToken:
        """A CancelToken for one generation, cancelled by :meth:`close` until it is released."""
        from engine.generation import CancelToken

        token = CancelToken()
        if self._closed:
            token.cancel()
        self._live.add(token)
        return token

    def release(self, token: CancelToken) -> None:
        """Forget a token whose generation has ended."""
        self._live.discard(token)

    @contextmanager
    def cancel_token(self) -> Iterator[CancelToken]:
        """``open_token`` ... ``release`` around one generation."""
        token = self.open_token()
        try:
            yield token
        finally:
            self.release(token)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the generation thread and await its result."""
        future = self._executor.submit(fn)
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
        service = self.service
        if service is not None:
            service.stop_completions()  # cancels its requests and joins its worker
        if running:
            log.warning("%d generation(s) did not stop within %.0f s", len(running), timeout)
            return False
        if service is not None:
            self._close(service)
            self.service = None
        return True
