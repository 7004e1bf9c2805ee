"""The CTranslate2 backend: fast CPU/GPU generation from a converted model folder.

Measured facts this module relies on:
* prompts go through ``generate_tokens`` (``include_prompt_in_result=False``): the prompt is
  forwarded at once instead of one token per step;
* ``static_prompt`` + ``cache_static_prompt`` keep the model state of the prompt head: with SPM
  prompts typing only appends to the prompt, so the head up to the current line is reused;
* a seed only takes effect on a Generator constructed after ``set_random_seed``, so seeded
  sampling runs on a freshly built Generator;
* a stop is checked once per generated token: the ``callback`` returns the cancel flag, so a
  cancel lands within one decoding step (prompt processing itself cannot be interrupted).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backends.sampling import sample_from_logits
from engine.backends.tokens import LocalBackend
from engine.errors import BackendUnavailableError, GenerationError
from engine.generation import CancelToken, GenerationConfig

if TYPE_CHECKING:
    import ctranslate2
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)


def _kv_bytes_per_token(model_dir: Path) -> int:
    """Bytes of cached key/value state per prompt token, from the conversion marker (an upper
    estimate of 64 KiB when the folder does not say)."""
    import json

    from engine.loading import CT2_MARKER

    try:
        value = json.loads((model_dir / CT2_MARKER).read_text()).get("kv_bytes_per_token")
    except (OSError, ValueError):
        value = None
    return int(value) if isinstance(value, int) and value > 0 else 64 * 1024


# Below this size of weights a decoding step is too little work per operator to share: measured
# on 2 cores, a 3M-parameter model (4 MB int8) decodes at 0.7 ms/token on one thread and 1.0 ms on
# two, while the 164M tiny_starcoder_py shape (177 MB) runs 41 tokens/s on two threads and 25 on one.
SINGLE_THREAD_MAX_WEIGHT_BYTES = 16 * 2**20


def default_threads(model_dir: Path, device: str) -> int:
    """Intra-op threads when the caller leaves it to us (0): one for very small models on the
    CPU, else every core."""
    cores = os.cpu_count() or 1
    if device != "cpu":
        return cores
    try:
        size = (Path(model_dir) / "model.bin").stat().st_size
    except OSError:
        return cores
    return 1 if size <= SINGLE_THREAD_MAX_WEIGHT_BYTES else cores


class CT2Backend(LocalBackend):
    """Generation with ``ctranslate2.Generator`` on a folder converted by ``engine.convert``."""

    name = "ct2"

    def __init__(
        self,
        model_dir: Path,
        tokenizer: PreTrainedTokenizerFast,
        context_window: int,
        *,
        device: str = "cpu",
        threads: int = 0,
        compute_type: str = "default",
        static_prompt: bool = True,
        min_static_tokens: int = 32,
        static_cache_bytes: int = 256 * 2**20,
        parallel_requests: int = 2,
    ) -> None:
        super().__init__(tokenizer, context_window)
        self.model_dir = Path(model_dir)
        self.device = device
        self.threads = threads or default_threads(self.model_dir, device)
        # Requests decoded side by side by CTranslate2 workers that share the weights, so a
        # completion never waits for a long chat answer to finish (benchmarks/concurrent_requests.py,
        # 164M shape: a completion during a chat answer 1.0 s instead of 4.0 s; alone 0.6 s either
        # way; the weights are not copied).
        self.parallel_requests = max(1, parallel_requests)
        self.compute_type = compute_type
        self.use_static_prompt = static_prompt
        self.min_static_tokens = min_static_tokens
        # CTranslate2 keeps every cached prompt head for the Generator's lifetime (an unbounded
        # map); past this many bytes of cached state a fresh Generator is built in the background
        # and swapped in, which returns that memory.
        self.static_cache_bytes = static_cache_bytes
        self.kv_bytes_per_token = _kv_bytes_per_token(self.model_dir)
        self._static_heads: OrderedDict[tuple[int, ...], None] = OrderedDict()
        self._static_bytes = 0
        self._rebuilding = False
        self._lock = threading.Lock()
        self._vocabulary: list[str] | None = None
        self._generator = self._new_generator()
        self.static_prompt_hits = 0  # requests whose head state came from the cache (for benchmarks)
        self.rebuilds = 0  # generators rebuilt to free cached prompt heads

    def _new_generator(self) -> ctranslate2.Generator:
        try:
            import ctranslate2
        except ImportError as exc:
            raise BackendUnavailableError(
                "ctranslate2 is not installed; install it (pip install ctranslate2) or use --backend transformers."
            ) from exc
        try:
            return ctranslate2.Generator(
                str(self.model_dir),
                device=self.device,
                compute_type=self.compute_type,
                intra_threads=self.threads,
                inter_threads=self.parallel_requests,
            )
        except (RuntimeError, ValueError) as exc:
            raise BackendUnavailableError(
                f"CTranslate2 cannot load {self.model_dir} on {self.device} ({exc}); "
                "convert the model again or pick another device or backend."
            ) from None

    def _token_strings(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary strings of ``ids`` (CTranslate2 takes tokens, not ids)."""
        if self._vocabulary is None:
            self._vocabulary = self._tokenizer.convert_ids_to_tokens(list(range(len(self._tokenizer))))
        vocabulary = self._vocabulary
        return [vocabulary[i] for i in ids]

    def _seeded_generator(self, seed: int) -> ctranslate2.Generator:
        import ctranslate2

        ctranslate2.set_random_seed(seed)
        return self._new_generator()

    def static_split(self, prompt: Sequence[int], limit: int | None = None) -> int:
        """How many leading tokens of ``prompt`` form the reusable head, or 0 when that head is
        too short to be worth caching.

        The head ends before the last token of the line above the cursor's line (the token
        before the one holding the prompt's last newline): the tokens up to there stay the same
        while the user types on the current line, and the head is already the current line's
        from the keystroke that typed the line break, whose healed prompt lacks the newline
        token itself (one token, not a whole new head, is then run after it). At most
        ``limit - 1`` tokens, so that at least one of the ``limit`` tokens to run is left."""
        if not self.use_static_prompt:
            return 0
        texts = self._healer.token_texts()
        for index in range(len(prompt) - 1, -1, -1):
            if "\n" in texts[prompt[index]]:
                split = index - 1 if limit is None else min(index - 1, limit - 1)
                return split if split >= self.min_static_tokens else 0
        return 0

    def cached_tokens(self, ids: Sequence[int], prompt: Sequence[int] | None = None) -> int:
        """How many leading tokens of ``ids`` a request would take from the cached prompt heads
        (0: it runs the whole prompt)."""
        split = self.static_split(ids if prompt is None else prompt, len(ids))
        with self._lock:
            return split if split and tuple(ids[:split]) in self._static_heads else 0

    def cache_prompt_head(self, ids: Sequence[int]) -> None:
        """Compute and cache the state of the reusable head of prompt ``ids`` (idle-time work:
        the next request with that head runs only the rest)."""
        split = self.static_split(ids, len(ids))
        if not split or self.cached_tokens(ids):
            return
        self._note_static_head(tuple(ids[:split]))
        tokens = self._token_strings(list(ids))
        self._generator.generate_batch(
            [tokens[split:]],
            max_length=1,
            include_prompt_in_result=False,
            static_prompt=tokens[:split],
            cache_static_prompt=True,
            sampling_topk=1,
        )

    def _note_static_head(self, head: tuple[int, ...]) -> None:
        with self._lock:
            if head in self._static_heads:
                self._static_heads.move_to_end(head)
                self.static_prompt_hits += 1
                return
            self._static_heads[head] = None
            # each worker may hold its own copy of the head's state
            self._static_bytes += len(head) * self.kv_bytes_per_token * self.parallel_requests
            if self._static_bytes <= self.static_cache_bytes or self._rebuilding:
                return
            self._rebuilding = True
        log.debug("cached prompt heads hold ~%d MB; rebuilding the generator", self._static_bytes >> 20)
        threading.Thread(target=self._rebuild, name="ct2-rebuild", daemon=True).start()

    def _rebuild(self) -> None:
        """Build a fresh Generator (empty prompt cache) and swap it in; requests keep running meanwhile."""
        try:
            fresh = self._new_generator()
        finally:
            with self._lock:
                self._rebuilding = False
        with self._lock:
            self._generator = fresh
            self._static_heads.clear()
            self._static_bytes = 0
            self.rebuilds += 1

    @staticmethod
    def _sampling_kwargs(config: GenerationConfig) -> dict[str, Any]:
        if config.greedy:
            return {"sampling_topk": 1}
        return {
            "sampling_topk": config.top_k,  # 0 = the whole vocabulary
            "sampling_topp": config.top_p,
            "sampling_temperature": config.temperature,
        }

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
        """Yield generated ids; see ``LocalBackend.decode_ids``."""
        split = self.static_split(ids if prompt is None else prompt, len(ids))
        if split:
            self._note_static_head(tuple(ids[:split]))
        generator = self._generator
        if config.seed is not None and not config.greedy:
            generator = self._seeded_generator(config.seed)
        tokens = self._token_strings(ids)
        static = {"static_prompt": tokens[:split], "cache_static_prompt": True} if split else {}
        if first_allowed is not None:
            first = self._first_token(generator, tokens[split:], static, first_allowed, config)
            yield first
            max_new -= 1
            tokens.append(self._token_strings([first])[0])
            if max_new <= 0 or cancel.cancelled:
                return
        yield from self._steps(generator, tokens[split:], static, max_new, config, cancel)

    def _steps(
        self,
        generator: ctranslate2.Generator,
        tokens: list[str],
        static: dict[str, Any],
        max_new: int,
        config: GenerationConfig,
        cancel: CancelToken,
    ) -> Iterator[int]:
        """Stream generated ids (a stop token ends the stream); decoding stops within one step
        of a cancel."""
        try:
            steps = generator.generate_tokens(
                tokens,
                max_length=max_new,
                end_token=list(self.stop_ids),
                callback=lambda _step: cancel.cancelled,
                **static,
                **self._sampling_kwargs(config),
            )
            for step in steps:
                if cancel.cancelled or step.token_id in self.stop_ids:
                    break
                yield step.token_id
        except RuntimeError as exc:
            raise GenerationError(
                f"CTranslate2 generation failed ({exc}); retry with a shorter prompt."
            ) from None

    def _first_token(
        self,
        generator: ctranslate2.Generator,
        tokens: list[str],
        static: dict[str, Any],
        allowed: Sequence[int],
        config: GenerationConfig,
    ) -> int:
        """One decoding step returning the logits, then a choice among ``allowed`` (token healing)."""
        result = generator.generate_batch(
            [tokens],
            max_length=1,
            include_prompt_in_result=False,
            return_logits_vocab=True,
            end_token=[],
            sampling_topk=1,
            **static,
        )[0]
        logits = np.asarray(result.logits[0], dtype=np.float32).reshape(-1)
        rng = np.random.default_rng(config.seed)
        return sample_from_logits(logits, allowed, config, rng)

    def generate_batch(
        self, prompts: Sequence[str], config: GenerationConfig, cancel: CancelToken | None = None
    ) -> list[str]:
        """Generate continuations of several prompts in one batch (no healing, no streaming; a
        batch runs to its end)."""
        batch = []
        max_new = config.max_new_tokens
        for prompt in prompts:
            ids = self.encode(prompt)
            max_new = min(max_new, self.budget(len(ids), config.max_new_tokens))
            batch.append(self._token_strings(ids))
        generator = self._generator
        if config.seed is not None and not config.greedy:
            generator = self._seeded_generator(config.seed)
        results = generator.generate_batch(
            batch,
            max_length=max_new,
            include_prompt_in_result=False,
            end_token=list(self.stop_ids),
            **self._sampling_kwargs(config),
        )
        return [
            self._tokenizer.decode(
                r.sequences_ids[0], skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
            for r in results
        ]

    def close(self) -> None:
        """Release the model's memory."""
        self._generator = None  # type: ignore[assignment]
