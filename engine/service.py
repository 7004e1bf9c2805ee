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
superseded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

from engine.generation import CancelToken
from engine.model import CodeModel, load_model
from engine.scheduler import CompletionScheduler
from engine.types import ChatRequest, Completion, CompletionCounters, CompletionRequest

__all__ = ["CompletionService"]

log = logging.getLogger(__name__)


class CompletionService:
    """Completions, infill and chat on one loaded model (see the module for the request path).

    Args:
        model: the loaded model; the service closes it.
        workers: completion requests running at the same time (for different documents).
        prefetch: compute the completion after each suggestion in the idle time.
    """

    def __init__(self, model: CodeModel, *, workers: int = 1, prefetch: bool = True) -> None:
        self.model = model
        self._scheduler = CompletionScheduler(model, workers=workers, prefetch=prefetch)

    @classmethod
    def load(cls, reference: str | None, *, backend: str = "auto", threads: int = 0) -> CompletionService:
        """Load a model (a path, a catalog name or a server URL for ``backend="http"``; None: the
        catalog's default) on ``backend`` (``auto`` picks one for the model and the CPU).
        Raises ``EngineError`` saying what is wrong."""
        return cls(load_model(reference, backend=backend, threads=threads))

    def prepare_kernels(self) -> float | None:
        """Build the backend's kernels for the prompt shapes it will see (the torch backend), so
        that no first prompt pays for it; returns the seconds it took, None when there was nothing
        to build."""
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
        return self.model.complete_request(request, cancel)

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[str]:
        """Stream the answer to a conversation (``CodeModel.chat`` fits it to the context window)."""
        return self.model.chat(
            request.messages,
            context=request.context,
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
            cancel=cancel,
        )

    # ------------------------------------------------------------------ shutting down

    def stop_completions(self) -> None:
        """Cancel every completion request and idle-time work, and join the completion worker."""
        self._scheduler.close()

    def close(self) -> None:
        """``stop_completions``, then release the model."""
        self.stop_completions()
        self.model.close()
