"""``CompletionService``: the one way an editor's server talks to the engine.

A keystroke, followed from the editor to the runtime:

1. ``lsp_server.handlers_completion`` receives ``textDocument/inlineCompletion`` and calls
   ``begin(document)``, which stops the document's previous request (one live request per
   document, ``engine.scheduler``);
2. ``lsp_server.completion`` splits the document at the cursor, gathers snippets of other files
   and sends a typed ``CompletionRequest`` (``engine.types``) to ``complete``;
3. the scheduler answers from the typed-through cache, or queues the request on its worker, where
   ``CodeModel.complete`` (``engine.model``) fits prefix, suffix and snippets into the token budget
   (``engine.budget``), builds the FIM prompt (``engine.prompts``), streams the backend's text
   through the stop strings and post-processes it (``engine.postprocess``);
4. the backend (``engine.backends``, chosen when the model was loaded: ``load``) turns the prompt
   into tokens and runs its runtime's decoding loop (``LocalBackend.generate_ids``), checking the
   request's cancel token at every step.

The service owns what the server must not decide: which backend runs the model, the prompt
budget, the caches, superseding, and the idle-time work (prefetch, warm-up at a resting cursor).
User commands (infill, chat) run on the caller's thread, beside completions, and are never
superseded. Chat runs on a runtime of its own (the completion model's file loaded again, or
another model), so an answer never evicts the prompt state typing builds up; it pauses while a
completion runs (``engine.priority``), so ghost text keeps its speed while an answer streams.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, wait

from engine.generation import CancelToken
from engine.model import CodeModel, load_model
from engine.priority import ForegroundGate
from engine.scheduler import CompletionScheduler
from engine.types import ChatRequest, Completion, CompletionCounters, CompletionRequest

__all__ = ["CompletionService"]

log = logging.getLogger(__name__)


class CompletionService:
    """Completions, infill and chat on one loaded model (see the module for the request path).

    Args:
        model: the loaded model; the service closes it.
        chat_loader: loads the model chat and explain run on (a runtime of their own, loaded on
            first use or by ``prepare_chat``); None: they share ``model``.
        workers: completion requests running at the same time (for different documents).
        prefetch: compute the completion after each suggestion in the idle time.
    """

    def __init__(
        self,
        model: CodeModel,
        *,
        chat_loader: Callable[[], CodeModel] | None = None,
        workers: int = 1,
        prefetch: bool = True,
    ) -> None:
        self.model = model
        self.gate = ForegroundGate()
        self._scheduler = CompletionScheduler(model, workers=workers, prefetch=prefetch, gate=self.gate)
        self._chat_loader = chat_loader
        self._chat_model: CodeModel | None = None
        self._chat_lock = threading.Lock()
        # the chat warm-up in flight: its thread's future, its token and what it processes
        self._chat_warm: tuple[Future[int], CancelToken, ChatRequest] | None = None

    @classmethod
    def load(
        cls,
        reference: str | None,
        *,
        backend: str = "auto",
        threads: int = 0,
        chat_reference: str | None = None,
    ) -> CompletionService:
        """Load a model (a path, a catalog name or a server URL for ``backend="http"``; None: the
        catalog's default) on ``backend`` (``auto`` picks one for the model and the CPU).
        Chat and explain run on ``chat_reference`` (None: the same model, on a runtime of its own;
        a remote server is shared). Raises ``EngineError`` saying what is wrong."""
        model = load_model(reference, backend=backend, threads=threads)
        chat_loader: Callable[[], CodeModel] | None = None
        if chat_reference is not None or backend != "http":

            def chat_loader() -> CodeModel:
                return load_model(chat_reference or reference, backend=backend, threads=threads)

        return cls(model, chat_loader=chat_loader)

    def prepare_kernels(self) -> float | None:
        """Prepare the backend for the prompts it will see, so that no first prompt pays for it:
        the torch backend builds its kernels per prompt shape, llama.cpp measures whether
        speculative drafts pay on this CPU; returns the seconds it took, None when there was
        nothing to do."""
        return self.model.warm()

    @property
    def model_name(self) -> str:
        """The model's name as shown to users."""
        return self.model.name

    @property
    def backend_name(self) -> str:
        """The backend that runs it (what ``auto`` chose)."""
        return self.model.backend_name

    def configure(self, *, max_prompt_tokens: int, max_new_tokens: int, prefetch: bool) -> int:
        """Apply the completion settings: the prompt budget (within the context window, leaving
        ``max_new_tokens`` for the answer) and idle-time prefetch. Returns the budget in force."""
        self._scheduler.prefetch = prefetch
        return self.model.set_prompt_budget(max_prompt_tokens, max_new_tokens)

    # ------------------------------------------------------------------ completion at the cursor

    def begin(self, document: str) -> CancelToken:
        """A completion request for ``document`` arrived: its previous one stops. Returns the new
        request's token: pass it to ``complete``, then to ``end`` when the request is over."""
        return self._scheduler.begin(document)

    def end(self, document: str, cancel: CancelToken) -> None:
        """The request ``begin`` gave ``cancel`` to is over (answered, abandoned or failed)."""
        self._scheduler.end(document, cancel)

    def busy(self, document: str) -> bool:
        """Whether a completion request of ``document`` is live (the user is typing there)."""
        return self._scheduler.busy(document)

    def submit(self, request: CompletionRequest, cancel: CancelToken | None = None) -> Future[Completion]:
        """Queue ``request`` (superseding its document's previous one); a future of its answer,
        which comes back with ``cancelled=True`` when a newer request stopped it."""
        return self._scheduler.submit(request, cancel)

    async def complete(self, request: CompletionRequest, cancel: CancelToken | None = None) -> Completion:
        """``submit`` for asyncio callers."""
        return await asyncio.wrap_future(self.submit(request, cancel))

    def from_cache(self, request: CompletionRequest) -> Completion | None:
        """The completion cache's answer (typed-through, prefetched or warmed up), or None; never
        runs the model, never waits."""
        return self._scheduler.from_cache(request) if request.cacheable else None

    def warm(self, requests: Sequence[CompletionRequest]) -> int:
        """Compute in idle time what the first keystroke at a resting cursor will ask for
        (``requests``: one document's, most likely first); nothing while the user types there.
        Returns how many were queued."""
        return self._scheduler.warm(requests)

    def cancel(self, document: str) -> None:
        """Stop the document's live request or idle-time work (the document was closed)."""
        self._scheduler.cancel(document)

    def counters(self) -> CompletionCounters:
        """How completion requests were answered so far."""
        return self._scheduler.counters()

    @property
    def prefetch_ms(self) -> list[float]:
        """How long each prefetch that ran the model took (for benchmarks)."""
        return list(self._scheduler.prefetch_ms)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no completion request or idle-time work is queued or running; False on timeout."""
        return self._scheduler.wait_idle(timeout)

    # ------------------------------------------------------------------ user commands

    def infill(self, request: CompletionRequest, cancel: CancelToken) -> Completion:
        """Complete ``request`` now, on the caller's thread (a command, not a keystroke: nothing
        supersedes it); blocking."""
        self._scheduler.stop_idle()  # a warm-up would hold the runtime for seconds
        with self.gate.foreground():
            return self.model.complete_request(request, cancel)

    def prepare_chat(self) -> CodeModel:
        """The model chat runs on, loaded now if it was not (raises ``EngineError`` if it cannot
        be); blocking: call it off the event loop, e.g. in the idle time after ``load``."""
        with self._chat_lock:
            if self._chat_model is None:
                if self._chat_loader is None:
                    self._chat_model = self.model
                else:
                    self._chat_model = self._chat_loader()
                    # a long chat prompt pauses between chunks while a completion runs
                    self._chat_model.backend.set_pause_point(self.gate.wait_turn)
            return self._chat_model

    @property
    def chat_model_name(self) -> str | None:
        """The name of the model chat runs on, None until it is loaded."""
        model = self._chat_model
        return None if model is None else model.name

    def warm_chat(self, request: ChatRequest) -> Future[int]:
        """Process, in the background, the head of the prompt of the question the user is about
        to ask: ``request.messages`` (the conversation so far) and ``request.context`` (the
        editor's, up to where question-dependent context would follow). A warm-up still running
        stops. A future of the tokens evaluated."""
        cancel = CancelToken()
        future: Future[int] = Future()
        with self._chat_lock:
            if self._chat_warm is not None:
                self._chat_warm[1].cancel()
            self._chat_warm = (future, cancel, request)

        def run() -> None:
            try:
                model = self.prepare_chat()
                future.set_result(model.warm_chat(request.messages, request.context, cancel))
            except Exception as exc:  # reported to whoever waits; the chat itself says more
                future.set_exception(exc)

        threading.Thread(target=run, name="stackcoder-chat-warm", daemon=True).start()
        return future

    def _settle_chat_warm(self, request: ChatRequest) -> None:
        """Stop the chat warm-up unless ``request``'s prompt begins with what it processes."""
        with self._chat_lock:
            warm, self._chat_warm = self._chat_warm, None
        if warm is None:
            return
        _future, cancel, warmed = warm
        same_head = list(request.messages[:-1]) == list(warmed.messages) and request.context.startswith(
            warmed.context
        )
        if not same_head:
            cancel.cancel()

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Generator[str, None, None]:
        """Stream the answer to a conversation (``CodeModel.chat`` fits it to the context window);
        on a runtime of its own, each next piece waits while a completion runs. A chat warm-up
        of the same head goes on (the answer waits for it on the runtime), any other stops."""
        self._settle_chat_warm(request)
        model = self.prepare_chat()
        if model is self.model:
            self._scheduler.stop_idle()  # one runtime: a warm-up would hold it for seconds
        pieces = model.chat(
            request.messages,
            context=request.context,
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
            cancel=cancel,
        )
        if model is self.model:
            # one runtime: completions wait for it (``LocalBackend`` runs one generation at a
            # time), so pausing here would hold the runtime while waiting for them
            return pieces
        return self.gate.background(pieces, cancel)

    # ------------------------------------------------------------------ shutting down

    def stop_completions(self) -> None:
        """Cancel every completion request and idle-time work, and join the completion worker."""
        self._scheduler.close()

    def close(self) -> None:
        """``stop_completions``, then release the models."""
        self.stop_completions()
        with self._chat_lock:
            warm, self._chat_warm = self._chat_warm, None
        if warm is not None:
            warm[1].cancel()
            wait([warm[0]], timeout=30)  # the runtime is not closed under a running warm-up
        with self._chat_lock:
            chat, self._chat_model = self._chat_model, None
        if chat is not None and chat is not self.model:
            chat.close()
        self.model.close()
