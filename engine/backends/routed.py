"""The ``auto`` backend: each request on whichever of two backends answers it sooner.

The two engines of a small GPTBigCode model are good at different halves of a request
(``benchmarks/cold_prompt.py``, ``benchmarks/chat_and_completions.py``, embedded model, 2 cores):

* the **prompt pass**: the torch backend runs a 1,000-token prompt in ~15 ms (bfloat16 on the
  CPU's matrix units, causal flash attention), CTranslate2 in ~35-40 ms (int8 matrices, float32
  attention over the whole n x n score matrix);
* **decoding**: CTranslate2 steps in ~0.46 ms, from C++ threads that run beside other requests;
  the torch backend's Python loop needs ~0.6-0.8 ms, and two of its requests side by side slow
  each other down badly.

So a completion goes to the torch backend only when its prompt pass there saves more than its
slower steps cost: the prompt tokens each backend would run (beyond its cached prompt heads)
are weighed at the measured cost per token, against ``TYPICAL_STEPS`` steps at the measured
extra cost per torch step (both cold, that is from ~250 prompt tokens on). Long generations
(chat, explain: ``max_new_tokens`` above ``max_torch_tokens``) always go to CTranslate2. After a
request the torch backend answered, CTranslate2 computes that prompt's head in the background,
so the user's next keystroke there is a cheap CTranslate2 request again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence

from engine.backends.ct2 import CT2Backend
from engine.backends.tokens import LocalBackend
from engine.backends.torch_native import TorchBackend
from engine.generation import CancelToken, GenerationConfig

# Measured on the embedded model, 2 cores (benchmarks/cold_prompt.py): milliseconds per prompt
# token run, and the extra milliseconds of a torch decoding step over a CTranslate2 one.
CT2_MS_PER_PROMPT_TOKEN = 0.040
TORCH_MS_PER_PROMPT_TOKEN = 0.016
TORCH_EXTRA_MS_PER_STEP = 0.25
TYPICAL_STEPS = 24  # a completion's usual length (a line or two)
MAX_TORCH_TOKENS = 128
IDLE_S = 0.03  # quiet time before CTranslate2 computes a prompt head in the background
DECISION_S = 0.5  # how long a routing decision holds for calls with the same prompt


class RoutedBackend(LocalBackend):
    """Routes each request to ``prompts`` (torch) or ``steps`` (CTranslate2); see the module."""

    name = "auto"

    def __init__(
        self,
        prompts: TorchBackend,
        steps: CT2Backend,
        *,
        max_torch_tokens: int = MAX_TORCH_TOKENS,
    ) -> None:
        super().__init__(steps.tokenizer, min(prompts.context_window, steps.context_window))
        self.prompts, self.steps = prompts, steps
        self.max_torch_tokens = max_torch_tokens
        self.threads = prompts.threads
        self.routed: Counter[str] = Counter()  # requests per backend (for tests and benchmarks)
        # recent decisions by prompt: the calls of one request (token healing makes several)
        # stay on one backend; each call is complete in itself, so this only saves recomputing
        self._decisions: OrderedDict[tuple[int, ...], tuple[float, LocalBackend]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: list[int] | None = None  # the prompt head CTranslate2 should compute next
        self._wake = threading.Event()
        self._in_flight = 0  # requests generating on the torch backend now
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._warmer = threading.Thread(target=self._warm_loop, name="ct2-prompt-heads", daemon=True)
        self._warmer.start()

    def choose(self, ids: Sequence[int], config: GenerationConfig, prompt: Sequence[int] | None = None):
        """The backend for a request (the same for the calls of one request within
        ``DECISION_S``: token healing calls ``generate_ids`` more than once with one ``prompt``)."""
        key = tuple(prompt if prompt is not None else ids)
        now = time.monotonic()
        with self._lock:
            recent = self._decisions.get(key)
            if recent is not None and now - recent[0] < DECISION_S:
                return recent[1]
        chosen = self.steps
        if config.max_new_tokens <= self.max_torch_tokens:
            ct2_runs = len(ids) - self.steps.cached_tokens(ids, prompt)
            torch_runs = len(ids) - self.prompts.cached_tokens(ids)
            saved_ms = CT2_MS_PER_PROMPT_TOKEN * ct2_runs - TORCH_MS_PER_PROMPT_TOKEN * torch_runs
            if saved_ms > TORCH_EXTRA_MS_PER_STEP * min(config.max_new_tokens, TYPICAL_STEPS):
                chosen = self.prompts
        with self._lock:
            self._decisions[key] = (now, chosen)
            self._decisions.move_to_end(key)
            while len(self._decisions) > 64:
                self._decisions.popitem(last=False)
        return chosen

    def decode_ids(
        self,
        ids: list[int],
        config: GenerationConfig,
        cancel: CancelToken,
        max_new: int,
        *,
        first_allowed: Sequence[int] | None,
        prompt: Sequence[int] | None,
    ) -> Iterator[int]:
        """Yield generated ids from the chosen backend; see ``LocalBackend.decode_ids`` (the
        context window is the smaller of the two, so the budget holds for either)."""
        backend = self.choose(ids, config, prompt)
        self.routed[backend.name] += 1
        on_torch = backend is self.prompts
        with self._lock:
            self._in_flight += on_torch
        try:
            yield from backend.decode_ids(
                ids, config, cancel, max_new, first_allowed=first_allowed, prompt=prompt
            )
        finally:
            if on_torch:
                with self._lock:
                    self._in_flight -= 1
                    self._idle.notify_all()
                self._warm_later(list(prompt if prompt is not None else ids))

    def generate_batch(
        self, prompts: Sequence[str], config: GenerationConfig, cancel: CancelToken | None = None
    ) -> list[str]:
        """Several sampled continuations at once (CTranslate2 batches them)."""
        return self.steps.generate_batch(prompts, config, cancel)

    def warm_shapes(self) -> float | None:
        """Prepare the torch backend's prompt shapes (see ``TorchBackend.warm_shapes``)."""
        return self.prompts.warm_shapes()

    def _warm_later(self, prompt: list[int]) -> None:
        with self._lock:
            self._pending = prompt
        self._wake.set()

    def _warm_loop(self) -> None:
        """Compute the pending prompt head once the torch backend has been idle for ``IDLE_S``
        (it must not share the cores with the next keystroke's request; CTranslate2's own
        requests, a chat answer say, run beside it on its second worker)."""
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                while not self._closed and (
                    self._in_flight or self._idle.wait_for(lambda: self._in_flight > 0, timeout=IDLE_S)
                ):
                    self._idle.wait_for(lambda: self._in_flight == 0 or self._closed)
                prompt, self._pending = self._pending, None
            if self._closed:
                return
            if prompt is not None:
                try:
                    self.steps.cache_prompt_head(prompt)
                except Exception:  # idle-time work: a failure only costs the next request time
                    continue

    def close(self) -> None:
        """Release both backends and stop the background thread."""
        with self._lock:
            self._closed = True
            self._idle.notify_all()
        self._wake.set()
        self.prompts.close()
        self.steps.close()
