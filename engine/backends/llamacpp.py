"""The llama.cpp backend (optional: ``pip install -e .[llama]``).

llama.cpp keeps the KV cache of the previous request and re-evaluates only the tokens after the
longest common prefix, which is what typing produces in SPM order (the suffix first, then the
growing prefix): each keystroke costs a few new prompt tokens instead of the whole prompt.
Tokenisation stays with the model's Hugging Face tokenizer (the GGUF file carries the same
vocabulary), so prompt budgeting and token healing work as in the other local backends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.backends.base import HeldTokens
from engine.backends.tokens import LocalBackend
from engine.drafts import DRAFT_LENGTHS, best_draft_length, lookup_draft
from engine.errors import BackendUnavailableError, CorruptModelError
from engine.generation import CancelToken, GenerationConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["LlamaCppBackend", "llama_cpp_available"]

# With a pause point set, a prompt is evaluated in chunks sized to take about this long (the
# longest a completion waits for a chat answer's prompt), measured as they run: a 1.5B model's
# prompt pass runs ~25 tokens/s on two AVX2 cores and ~150 with AVX-512.
PAUSE_EVERY_S = 0.2
FIRST_CHUNK_TOKENS = 8
MAX_CHUNK_TOKENS = 128
# ``hold`` (idle-time work) evaluates in chunks of about this long, up to a whole batch: a
# keystroke waits at most that for it, and chunks of 128 tokens cost ~25 % of the speed (0.5B).
HOLD_CHUNK_S = 0.5

# Prompt states kept in memory besides the live one (other documents, earlier cursor places): a
# state is saved when a new prompt would drop at least SAVE_AT_LEAST of its tokens, and restored
# when it shares at least RESTORE_GAIN more tokens with a new prompt than the live state does.
# A 1.5B Qwen2.5-Coder state is ~28 KB a token (~44 MB for 1,536 tokens).
SAVED_PROMPTS = 4
SAVE_AT_LEAST = 128
RESTORE_GAIN = 16

# Passes timed per size when ``warm_shapes`` measures whether drafts pay on this CPU, and the
# code they run on (any text does: the cost of a pass hardly depends on its tokens).
CALIBRATION_REPEATS = 3
CALIBRATION_TEXT = "def mean(values):\n    total = 0\n    for value in values:\n        total += value\n    return total / len(values)\n"


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _extra_buffers(enabled: bool | None):
    """Load with ``use_extra_bufts=False`` (the weights as the file holds them) when ``enabled`` is
    False, and by default (None) on CPUs with AMX: there llama.cpp's extra buffer type moves Q8_0
    matrices into its AMX layout, and its AMX matrix product then faults (SIGSEGV on ``ldtilecfg``
    in ``ggml_backend_amx_mul_mat``, llama-cpp-python 0.3.36; upstream ggml-org/llama.cpp#20824).

    Elsewhere the weights are repacked for the CPU's kernels: on the default 1.5B Q4_K_M model
    with AVX-512 that trades prompt speed for decoding speed (101.6 against 147.6 prompt tok/s,
    25.3 against 20.5 decoded tok/s, ``benchmarks/llamacpp_build.py``, AMD EPYC, 2 threads), and
    typing is mostly decoding. ``Llama`` offers no argument for it, so the default model
    parameters are adjusted while the model loads."""
    from engine.cpu import cpu_flags

    if enabled or (enabled is None and "amx_tile" not in cpu_flags()):
        yield
        return
    import llama_cpp
    import llama_cpp.llama as llama_module

    original = llama_cpp.llama_model_default_params

    def defaults():
        params = original()
        params.use_extra_bufts = False
        return params

    with _PARAMS_LOCK:
        llama_module.llama_cpp.llama_model_default_params = defaults
        try:
            yield
        finally:
            llama_module.llama_cpp.llama_model_default_params = original


def _first_step_only(allowed: Sequence[int]):
    """A logits processor that masks everything but ``allowed`` at the first step only."""
    import numpy as np
    from llama_cpp import LogitsProcessorList

    keep = np.asarray(list(allowed), dtype=np.int64)
    pending = [True]

    def mask(_input_ids, scores):
        if not pending:
            return scores
        pending.clear()
        masked = np.full_like(scores, -np.inf)
        masked[keep] = scores[keep]
        return masked

    return LogitsProcessorList([mask])


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared


@dataclass
class SavedPrompt:
    """A copy of the KV state of one prompt: its tokens and llama.cpp's sequence data."""

    tokens: list[int]
    data: ctypes.Array  # llama_state_seq_get_data's bytes, handed back as they are to restore
    size: int  # bytes of ``data`` in use


@dataclass
class DraftCounters:
    """How speculative decoding fared: passes that checked a draft, drafted and accepted tokens."""

    passes: int = 0
    drafted: int = 0
    accepted: int = 0

    def record(self, drafted: int, accepted: int) -> None:
        """Count one model pass that checked ``drafted`` tokens and kept ``accepted``."""
        self.passes += 1
        self.drafted += drafted
        self.accepted += accepted


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python is installed."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


class LlamaCppBackend(LocalBackend):
    """Generation with llama.cpp on a GGUF file, reusing the KV cache across requests."""

    name = "llamacpp"

    def __init__(
        self,
        gguf_path: Path,
        tokenizer: PreTrainedTokenizerFast,
        context_window: int,
        *,
        threads: int = 0,
        batch_tokens: int = 512,
        flash_attention: bool = True,
        repack: bool | None = None,
        lora_path: Path | None = None,
        draft_tokens: int | None = None,
        saved_prompt_limit: int = SAVED_PROMPTS,
    ) -> None:
        super().__init__(tokenizer, context_window)
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise BackendUnavailableError(
                "llama-cpp-python is not installed; run `make install` (scripts/install.sh builds it for this CPU) or use --backend ct2."
            ) from exc
        threads = threads or os.cpu_count() or 1
        try:
            with _extra_buffers(repack):
                self._llm = Llama(
                    model_path=str(gguf_path),
                    n_ctx=context_window,
                    n_batch=batch_tokens,
                    n_threads=threads,
                    n_threads_batch=threads,
                    logits_all=False,
                    # faster prompts on the CPU (benchmarks/prompt_length.py compares both)
                    flash_attn=flash_attention,
                    # a GGUF LoRA adapter applied to the model at load time (adapter bundles)
                    lora_path=str(lora_path) if lora_path is not None else None,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise CorruptModelError(
                f"llama.cpp cannot load {gguf_path}{f' with the adapter {lora_path}' if lora_path else ''} "
                f"({str(exc)[:160]}); delete it to have it exported or pulled again."
            ) from None
        self._pause_point: Callable[[CancelToken], None] | None = None
        self._chunk_tokens = FIRST_CHUNK_TOKENS  # the next pausable chunk, from the last one's speed
        self.prompt_chunks: list[int] = []  # sizes of the last pausable prompt's chunks
        # One generation at a time: a command (infill) may run beside the completion worker, and
        # the context's KV cache is one sequence. A plain lock, not a reentrant one: a generator
        # may be resumed or closed on another thread than the one that started it.
        self._runtime_lock = threading.Lock()
        # Drafted tokens checked per greedy pass (``engine.drafts``); 0: plain decoding. None:
        # plain until ``warm_shapes`` has measured what a pass over several tokens costs here.
        self.draft_tokens = draft_tokens or 0
        self._measure_drafts = draft_tokens is None
        self.pass_seconds: dict[int, float] = {}  # what that measurement found
        self.saved_prompts: list[SavedPrompt] = []  # most recently used first
        self.saved_prompt_limit = saved_prompt_limit  # 0: the live state only
        self.restored_prompts = 0  # requests that began from a saved state
        self.drafts = DraftCounters()

    def set_pause_point(self, wait: Callable[[CancelToken], None] | None) -> None:
        """Evaluate the new part of each prompt in chunks of about ``PAUSE_EVERY_S`` seconds,
        calling ``wait(cancel)`` before each (None: in one call, the fastest way)."""
        self._pause_point = wait

    def _evaluate_in_chunks(
        self, ids: list[int], end: int, cancel: CancelToken, size: int, seconds: float, max_tokens: int
    ) -> tuple[list[int], int]:
        """Evaluate ``ids[n_tokens:end]`` into the KV cache in chunks, the first of ``size``
        tokens, each next one sized from the last one's speed to take about ``seconds`` (at most
        ``max_tokens``); the pause point (if set) runs before each, and ``cancel`` stops it
        between them. Returns the chunks' sizes and the size the next chunk would have had."""
        llm = self._llm
        chunks: list[int] = []
        while llm.n_tokens < end:
            if self._pause_point is not None:
                self._pause_point(cancel)  # more urgent work on the same cores goes first
            if cancel.cancelled:
                break
            chunk = ids[llm.n_tokens : min(llm.n_tokens + size, end)]
            began = time.perf_counter()
            llm.eval(chunk)
            rate = len(chunk) / max(time.perf_counter() - began, 1e-6)
            size = max(1, min(max_tokens, int(rate * seconds)))
            chunks.append(len(chunk))
        return chunks, size

    def _evaluate_pausably(self, ids: list[int], cancel: CancelToken) -> None:
        """Bring the KV cache to ``ids`` but their last token, chunk by chunk with a pause point
        before each; ``Llama.generate`` then finds the prompt cached and evaluates one token."""
        llm = self._llm
        assert self._pause_point is not None
        llm.n_tokens = _common_prefix(
            llm.input_ids[: llm.n_tokens].tolist(), ids[:-1]
        )  # ``eval`` drops the rest
        self.prompt_chunks, self._chunk_tokens = self._evaluate_in_chunks(
            ids, len(ids) - 1, cancel, self._chunk_tokens, PAUSE_EVERY_S, MAX_CHUNK_TOKENS
        )

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
        """Yield generated ids; see ``LocalBackend.decode_ids``. Greedy requests decode with
        drafts (``draft_tokens``); sampled ones through llama-cpp-python's sampler."""
        with self._runtime_lock:
            self._switch_prompt(ids)
            if config.greedy and self.draft_tokens > 0:
                yield from self._decode_greedy(ids, cancel, max_new, first_allowed)
                return
            if config.seed is not None:
                self._llm.set_seed(config.seed)
            if self._pause_point is not None:
                self._evaluate_pausably(ids, cancel)
                if cancel.cancelled:
                    return
            tokens = self._llm.generate(
                ids,
                top_k=1 if config.greedy else (config.top_k or 0),
                top_p=1.0 if config.greedy else config.top_p,
                temp=0.0 if config.greedy else config.temperature,
                repeat_penalty=1.0,
                reset=True,  # keeps the cached KV of the longest common prefix
                # Only a healed step pays for a Python pass over the logits.
                logits_processor=None if first_allowed is None else _first_step_only(first_allowed),
            )
            produced = 0
            try:
                for token in tokens:
                    if cancel.cancelled or token in self.stop_ids:
                        return
                    yield int(token)
                    produced += 1
                    if produced >= max_new:
                        return
            finally:
                tokens.close()

    def _switch_prompt(self, ids: list[int]) -> None:
        """Before ``ids`` overwrite the live KV state: keep it if much of it would be lost (the
        user moved to another document or place) and no saved state holds nearly all of it, and
        begin from a saved state instead when one shares a longer head with ``ids`` (the user
        came back, or a document's window is held)."""
        llm = self._llm
        live = llm.input_ids[: llm.n_tokens].tolist()
        shared = _common_prefix(live, ids)
        best, best_shared = None, shared + RESTORE_GAIN - 1
        for saved in self.saved_prompts:
            overlap = _common_prefix(saved.tokens, ids)
            if overlap > best_shared:
                best, best_shared = saved, overlap
        if (
            len(live) - shared >= SAVE_AT_LEAST
            and self.saved_prompt_limit > 0
            and not any(
                len(live) - _common_prefix(s.tokens, live) < SAVE_AT_LEAST for s in self.saved_prompts
            )
        ):
            self._save(live)
        if best is not None:
            self._restore(best)

    def _save(self, tokens: list[int]) -> None:
        """Copy the live KV state (of ``tokens``) into ``saved_prompts``, most recent first."""
        import llama_cpp

        ctx = self._llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        if not written:
            return
        # a state whose tokens all lead this one's is of no more use
        kept = [
            s
            for s in self.saved_prompts
            if not (len(s.tokens) <= len(tokens) and tokens[: len(s.tokens)] == s.tokens)
        ]
        self.saved_prompts = [SavedPrompt(tokens, buffer, written), *kept][: self.saved_prompt_limit]

    def _restore(self, saved: SavedPrompt) -> None:
        """Make a copy of ``saved`` the live KV state; ``saved`` stays (most recently used first):
        the request will overwrite the live state's tail, and places further on need it again."""
        import llama_cpp

        llm = self._llm
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        self.saved_prompts = [saved, *(s for s in self.saved_prompts if s is not saved)]
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, saved.data, saved.size, 0) != saved.size:
            llm.n_tokens = 0  # nothing usable was restored: evaluate from the start
            return
        llm.input_ids[: len(saved.tokens)] = saved.tokens
        llm.n_tokens = len(saved.tokens)
        llm._requires_eval = True
        self.restored_prompts += 1

    def held_tokens(self, prompt: str) -> HeldTokens:
        """Leading tokens of ``prompt`` in the live KV state or a saved one, of its total."""
        ids = self.encode(prompt)
        llm = self._llm
        live = llm.input_ids[: llm.n_tokens].tolist()
        held = max([_common_prefix(live, ids), *(_common_prefix(s.tokens, ids) for s in self.saved_prompts)])
        return HeldTokens(held, len(ids))

    def hold(self, prompt: str, cancel: CancelToken | None = None) -> int:
        """Evaluate ``prompt`` into the live KV state (from the longest state that leads it), in
        chunks of about ``HOLD_CHUNK_S`` seconds with ``cancel`` checked between them; the state
        is saved when a later prompt moves away from it. Returns the tokens evaluated."""
        ids = self.encode(prompt)
        cancel = cancel or CancelToken()
        with self._runtime_lock:
            self._switch_prompt(ids)
            llm = self._llm
            before = llm.n_tokens = _common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids)
            self._evaluate_in_chunks(ids, len(ids), cancel, self._chunk_tokens, HOLD_CHUNK_S, llm.n_batch)
            llm._requires_eval = True  # the logits are no longer ``generate``'s to reuse
            return llm.n_tokens - before

    def _bring_prompt(self, ids: list[int], cancel: CancelToken) -> None:
        """Evaluate ``ids`` after their longest prefix already in the KV cache (at least the last
        token, whose logits come next), in pausable chunks when a pause point is set."""
        llm = self._llm
        if self._pause_point is not None:
            self._evaluate_pausably(ids, cancel)
            if cancel.cancelled:
                return
            llm.eval(ids[-1:])
        else:
            llm.n_tokens = _common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids[:-1])
            llm.eval(ids[llm.n_tokens :])
        llm._requires_eval = True  # the logits are no longer ``generate``'s to reuse

    def _decode_greedy(
        self, ids: list[int], cancel: CancelToken, max_new: int, first_allowed: Sequence[int] | None
    ) -> Iterator[int]:
        """Greedy decoding with prompt-lookup drafts: each pass evaluates the last token and a
        draft of the next ones, keeps the draft up to its first token the model would not have
        chosen, and answers that position with the model's own choice. The KV cache, the
        context's tokens and ``n_tokens`` agree whenever a token is yielded."""
        import numpy as np

        llm = self._llm
        self._bring_prompt(ids, cancel)
        if cancel.cancelled:
            return
        allowed = None if first_allowed is None else np.asarray(list(first_allowed), dtype=np.int64)
        history = np.empty(len(ids) + max_new + self.draft_tokens + 1, dtype=np.int64)
        history[: len(ids)] = ids
        length, produced = len(ids), 0
        # tokens to yield: all but the last are in the KV cache; the last opens the next pass
        pending = [self._choose(-1, allowed)]
        while True:
            for token in pending:
                if cancel.cancelled or token in self.stop_ids:
                    return
                yield token
                produced += 1
                history[length] = token
                length += 1
                if produced >= max_new:
                    return
            draft = lookup_draft(history[:length], min(self.draft_tokens, max_new - produced))
            start = llm.n_tokens
            llm._batch.set_batch(batch=[pending[-1], *draft], n_past=start, logits_all=True)
            llm._ctx.decode(llm._batch)
            llm.input_ids[start : start + 1 + len(draft)] = [pending[-1], *draft]
            llm.n_tokens = start + 1 + len(draft)
            kept, choice = 0, self._choose(0, None)
            while kept < len(draft) and choice == draft[kept]:
                kept += 1
                choice = self._choose(kept, None)
            self.drafts.record(len(draft), kept)
            self._drop_after(start + 1 + kept)
            pending = [*draft[:kept], choice]

    def _choose(self, index: int, allowed) -> int:
        """The most likely next token after the current batch's ``index``-th position (-1: its
        last), among ``allowed`` when given."""
        import numpy as np

        logits = np.ctypeslib.as_array(self._llm._ctx.get_logits_ith(index), shape=(self._llm._n_vocab,))
        if allowed is None:
            return int(np.argmax(logits))
        return int(allowed[int(np.argmax(logits[allowed]))])

    def _drop_after(self, keep: int) -> None:
        """Forget the KV state of positions from ``keep`` on (a rejected draft's tail)."""
        llm = self._llm
        if llm.n_tokens > keep:
            llm._ctx.kv_cache_seq_rm(-1, keep, -1)
            llm.n_tokens = keep

    def measure_passes(self, ids: list[int], sizes: Sequence[int], repeats: int) -> dict[int, float]:
        """Median seconds of one pass over n tokens (each of ``sizes``) after ``ids`` but their last
        ``max(sizes)`` tokens (those are the passes' tokens), timed ``repeats`` times each."""
        import statistics

        llm = self._llm
        timings: dict[int, list[float]] = {n: [] for n in sizes}
        with self._runtime_lock:
            self._bring_prompt(ids[: len(ids) - max(sizes)], CancelToken())
            base = llm.n_tokens
            for _ in range(repeats):
                for n in sizes:
                    started = time.perf_counter()
                    llm._batch.set_batch(batch=ids[base : base + n], n_past=base, logits_all=True)
                    llm._ctx.decode(llm._batch)
                    timings[n].append(time.perf_counter() - started)
                    llm._ctx.kv_cache_seq_rm(-1, base, -1)
            llm.n_tokens = base
        return {n: statistics.median(values) for n, values in timings.items()}

    def warm_shapes(self) -> float | None:
        """Measure what one pass over 1, 3, 5 and 9 tokens costs on this CPU and decode greedy
        requests with the draft length that pays most (``engine.drafts.best_draft_length``: none
        on two AVX2 cores, where a pass costs nearly one step per token); seconds it took."""
        if not self._measure_drafts:
            return None
        began = time.perf_counter()
        sizes = [1, *(k + 1 for k in DRAFT_LENGTHS)]
        self.pass_seconds = self.measure_passes(self.encode(CALIBRATION_TEXT), sizes, CALIBRATION_REPEATS)
        self.draft_tokens = best_draft_length(self.pass_seconds)
        self._measure_drafts = False
        return time.perf_counter() - began

    def forget_prompt(self) -> None:
        """Drop the cached KV state and the saved ones, so the next request evaluates its whole prompt."""
        self._llm.reset()
        self.saved_prompts.clear()

    def close(self) -> None:
        """Free the model."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()
