"""``CodeModel``: a loaded model, for the CLI, the OpenAI-compatible server and the training code
(the language server reaches it through ``engine.service.CompletionService``).

It joins a backend (llama.cpp, CTranslate2, torch, transformers or a remote server) to the text
side of the engine: token-budgeted FIM prompts (``engine.budget``, ``engine.prompts``),
post-processing (``engine.postprocess``), the typed-through completion cache (``engine.cache``)
and stop strings (``engine.stopping``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.budget import fit_prompt, reachable_text
from engine.cache import CompletionCache
from engine.errors import GenerationError
from engine.generation import CancelToken, GenerationConfig
from engine.postprocess import answer_loops, decide_mode, fit_to_suffix, postprocess_completion
from engine.prompts import (
    TEMPLATE_STYLE,
    FimFormat,
    build_chat_prompt,
    build_fim_prompt,
    build_template_chat_prompt,
    chat_stop_strings,
    detect_chat_style,
    prompt_suffix,
)
from engine.stopping import apply_stops
from engine.types import Completion, CompletionRequest, Snippet
from engine.windows import (
    NEAR_SUFFIX_TOKENS,
    WINDOW_CHARS_PER_TOKEN,
    WINDOW_SAVING,
    WINDOWS_PER_DOCUMENT,
    find_window,
    near_suffix,
    new_window_start,
    snippet_tokens,
    window_key,
    window_text,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from engine.backends.base import Backend

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.5  # token estimate when no tokenizer is at hand (remote backends)
DEFAULT_MAX_PROMPT_TOKENS = 1536  # keeps time-to-first-token (which cannot be cancelled) bounded
PROMPT_FORMAT_TOKENS = 8  # FIM and repository special tokens around the budgeted text (+ slack at the joins)
MIN_PROMPT_TOKENS = 16  # a prompt budget never goes below this, however small the window
CHOICE_TEMPERATURE = 0.6  # several choices are sampled at least this hot, or they come out the same
FIM_ORDERS = ("auto", "spm", "psm", "window")
# Stands for the question in the prompt whose head ``warm_chat`` processes.
CHAT_PROBE = "\ue000question\ue000"


class _Window(NamedTuple):
    """Where a cursor's window prompt begins: the window's snippets, its size in characters,
    the prompt budget, and its start in the cursor's prefix (None: the cursor lies in no window)."""

    snippets: tuple[Snippet, ...]
    max_chars: int
    room: int
    start: int | None


class CodeModel:
    """A loaded model: FIM completion, raw streaming, chat.

    Args:
        backend: what runs the model (see ``engine.backends.base.Backend``).
        backend_name: "ct2" | "transformers" | "http".
        name: the model's name as shown to users.
        family: "gpt_bigcode" | "starcoder2" (or the server's family for remote backends).
        fim: the model's FIM format, None when it has none (completion then continues the prefix).
        fim_order: "auto" (default): per request, the SPM prompt or the document window's PSM
            prompt, whichever the backend answers with fewer new tokens (``engine.windows``;
            SPM for backends that cannot tell); "spm" (typing only appends to the prompt, which
            backends keep as processed state), "psm", or "window" (always the window prompt:
            for measuring it).
        max_prompt_tokens: token budget of a completion prompt (prefix + suffix + snippets).
        cache_size: entries of the completion cache.
        elide_closing_rest: leave the cursor line's auto-closed brackets and quotes out of the
            prompt's suffix (``engine.prompts.prompt_suffix``).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        name: str,
        family: str,
        fim: FimFormat | None,
        fim_order: str = "auto",
        max_prompt_tokens: int | None = None,
        cache_size: int = 256,
        backend_name: str | None = None,
        elide_closing_rest: bool = True,
    ) -> None:
        self.backend = backend
        self.backend_name = backend_name or type(backend).__name__.removesuffix("Backend").lower()
        self.name = name
        self.family = family
        self.fim = fim
        if fim_order not in FIM_ORDERS:
            raise ValueError(f"unknown FIM order {fim_order!r}; known orders: {', '.join(FIM_ORDERS)}")
        self.fim_order = fim_order
        # by document path: the snippets its windows were processed with, and the windows' keys
        # (``warm_window``, ``engine.windows``)
        self._window_snippets: dict[str | None, tuple[Snippet, ...]] = {}
        self._windows: dict[str | None, list[str]] = {}
        self.near_suffix_tokens = NEAR_SUFFIX_TOKENS  # of the suffix a window prompt shows
        self.context_window = backend.context_window
        self.max_prompt_tokens = max_prompt_tokens or min(DEFAULT_MAX_PROMPT_TOKENS, self.context_window // 2)
        self.cache = CompletionCache(cache_size)
        self.elide_closing_rest = elide_closing_rest
        self.chat_style = detect_chat_style(self.tokenizer, name)

    # ------------------------------------------------------------------ basics

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast | None:
        """The model's fast tokenizer, or None for a remote backend."""
        return self.backend.tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as the model counts them (an estimate for remote backends)."""
        tokenizer = self.tokenizer
        if tokenizer is None:
            return int(len(text) / CHARS_PER_TOKEN + 0.999)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def set_prompt_budget(self, max_prompt_tokens: int, max_new_tokens: int) -> int:
        """Budget completion prompts to ``max_prompt_tokens``, leaving ``max_new_tokens`` of the
        context window for the answer (never below ``MIN_PROMPT_TOKENS``); returns the budget."""
        room = self.context_window - max_new_tokens if self.context_window else max_prompt_tokens
        self.max_prompt_tokens = max(MIN_PROMPT_TOKENS, min(max_prompt_tokens, room))
        return self.max_prompt_tokens

    def warm(self) -> float | None:
        """Prepare the backend for the prompts it will see (the torch backend builds oneDNN kernels
        per shape, llama.cpp measures whether drafts pay); returns the seconds it took, None when
        the backend needs nothing."""
        return self.backend.warm_shapes()

    # ------------------------------------------------------------------ raw generation

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
        stop: Sequence[str] = (),
        cancel: CancelToken | None = None,
        heal: bool = True,
    ) -> Generator[str, None, None]:
        """Yield text pieces continuing ``prompt``; ends at EOS, at a stop string (not included),
        after ``max_new_tokens`` or within one decoding step of ``cancel.cancel()``."""
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            seed=seed,
            stop=tuple(stop),
            heal=heal,
        )
        pieces = self.backend.stream(prompt, config, cancel)
        try:
            yield from apply_stops(pieces, config.stop)
        finally:
            pieces.close()  # stops the backend's decoding loop when we stopped early

    def generate(self, prompt: str, **kwargs: Any) -> str:
        """``stream`` joined into one string (same keyword arguments)."""
        return "".join(self.stream(prompt, **kwargs))

    # ------------------------------------------------------------------ completion

    def _room(self, max_new_tokens: int) -> int:
        """The prompt budget for the budgeted text, within the context window."""
        room = self.context_window - max_new_tokens - PROMPT_FORMAT_TOKENS
        return max(MIN_PROMPT_TOKENS, min(self.max_prompt_tokens, room))

    def _shown_suffix(self, suffix: str) -> str:
        return prompt_suffix(suffix) if self.elide_closing_rest and self.fim is not None else suffix

    def build_prompt(
        self,
        prefix: str,
        suffix: str = "",
        *,
        snippets: Sequence[Snippet] = (),
        repo_name: str | None = None,
        path: str | None = None,
        max_new_tokens: int = 0,
        order: str | None = None,
    ) -> tuple[str, int]:
        """The budgeted FIM prompt for a cursor position and its token count (the text parts).

        The budget is ``max_prompt_tokens``, lowered so that the prompt, its FIM/repository
        special tokens and ``max_new_tokens`` fit in the context window. ``order`` (default
        ``fim_order``): "spm", "psm", "window" (``window_prompt``) or "auto" (``choose_prompt``).
        """
        place = CompletionRequest(
            "", prefix, suffix, tuple(snippets), repo_name, path, max_new_tokens=max_new_tokens
        )
        prompt, tokens, _ = self._prompt(place, order or self.fim_order)
        return prompt, tokens

    def _prompt(self, place: CompletionRequest, order: str) -> tuple[str, int, str]:
        """``place``'s prompt in ``order``, its token count and the order it is in (what "auto" chose)."""
        if order == "window":
            return (*self.window_prompt(place), "window")
        if order == "auto":
            return self.choose_prompt(place)
        fitted = fit_prompt(
            self.count_tokens,
            place.prefix,
            self._shown_suffix(place.suffix),
            place.snippets,
            max_prompt_tokens=self._room(place.max_new_tokens),
            tokenizer=self.tokenizer,
        )
        if self.fim is None:
            return fitted.prefix, fitted.prompt_tokens, ""
        prompt = build_fim_prompt(
            self.fim,
            fitted.prefix,
            fitted.suffix,
            order=order,
            snippets=fitted.snippets,
            repo_name=place.repo_name,
            path=place.path,
        )
        return prompt, fitted.prompt_tokens, order

    def choose_prompt(self, place: CompletionRequest) -> tuple[str, int, str]:
        """The prompt ``auto`` order runs at ``place``, its token count and its order ("spm" or
        "window"): the SPM prompt, unless the cursor lies in a window of its document whose PSM
        prompt (``window_prompt``) the backend holds most of and would evaluate ``WINDOW_SAVING``
        fewer tokens of."""
        spm, spm_tokens, _ = self._prompt(place, "spm")
        chosen = spm, spm_tokens, "spm"
        if self.fim is None or not self._windows.get(place.path):
            return chosen
        spm_held = self.backend.held_tokens(spm)
        # a backend that cannot tell, or typing at one place: SPM costs (nearly) nothing new
        if spm_held is None or spm_held.new <= WINDOW_SAVING:
            return chosen
        window = self._window(place)
        if window.start is None:  # the cursor lies in no window
            return chosen
        prompt, tokens = self._window_prompt(place, window)
        held = self.backend.held_tokens(prompt)
        # the window's head held (not a window whose state is gone: its shorter prompt would
        # only trade context for speed)
        if held is not None and 2 * held.held >= held.total and held.new + WINDOW_SAVING <= spm_held.new:
            return prompt, tokens, "window"
        return chosen

    def _window_parts(
        self, snippets: Sequence[Snippet], path: str | None, room: int
    ) -> tuple[tuple[Snippet, ...], int]:
        """The snippets of ``path``'s window prompts (those its window was processed with, else
        ``snippets`` fitted to a quarter of the budget) and the characters of its window."""
        kept = self._window_snippets.get(path)
        if kept is None:
            kept = tuple(
                fit_prompt(
                    self.count_tokens,
                    "",
                    "",
                    snippets,
                    max_prompt_tokens=max(1, room // 4),
                    suffix_share=0.0,
                    snippet_share=1.0,
                    tokenizer=self.tokenizer,
                ).snippets
            )
        prefix_tokens = room - self.near_suffix_tokens - snippet_tokens(self.count_tokens, kept)
        return kept, max(1, prefix_tokens) * WINDOW_CHARS_PER_TOKEN

    def _window(self, place: CompletionRequest) -> _Window:
        """The window ``place``'s cursor lies in (``start`` None: none), with its snippets and size."""
        room = self._room(place.max_new_tokens)
        snippets, max_chars = self._window_parts(place.snippets, place.path, room)
        start = find_window(place.prefix, self._windows.get(place.path, ()), max_chars)
        return _Window(snippets, max_chars, room, start)

    def window_prompt(self, place: CompletionRequest) -> tuple[str, int]:
        """The PSM prompt of the document window of ``place``'s cursor (``engine.windows``): the
        prefix from the start of the processed window it lies in (else as much as the budget
        holds), the first ``near_suffix_tokens`` tokens of the suffix; and its token count (the
        text parts)."""
        if self.fim is None:
            raise GenerationError(f"{self.name} has no fill-in-the-middle format: it has no window prompts")
        return self._window_prompt(place, self._window(place))

    def _window_prompt(self, place: CompletionRequest, window: _Window) -> tuple[str, int]:
        assert self.fim is not None
        near = near_suffix(
            self.count_tokens, self._shown_suffix(place.suffix), self.near_suffix_tokens, self.tokenizer
        )
        fitted = fit_prompt(
            self.count_tokens,
            place.prefix[window.start or 0 :],
            near,
            window.snippets,
            max_prompt_tokens=window.room,
            tokenizer=self.tokenizer,
        )
        prompt = build_fim_prompt(
            self.fim,
            fitted.prefix,
            fitted.suffix,
            order="psm",
            snippets=fitted.snippets,
            repo_name=place.repo_name,
            path=place.path,
        )
        return prompt, fitted.prompt_tokens

    def place_window(self, request: CompletionRequest) -> str:
        """Place the window of ``request``'s cursor (the one it lies in, else a new one around
        it), remember it for the window prompts of its document, and return the head they share:
        the prompt up to its suffix, with the window's text to its end."""
        if self.fim is None:
            raise GenerationError(f"{self.name} has no fill-in-the-middle format: it has no window prompts")
        prefix, suffix = self.reachable(request.prefix, request.suffix)
        window = self._window(replace(request, prefix=prefix, suffix=suffix))
        self._window_snippets[request.path] = window.snippets
        start = new_window_start(prefix, window.max_chars) if window.start is None else window.start
        text = window_text(prefix + suffix, start, window.max_chars)
        keys = self._windows.setdefault(request.path, [])
        key = window_key(text)
        keys[:] = [key, *(k for k in keys if k != key)][:WINDOWS_PER_DOCUMENT]
        prompt = build_fim_prompt(
            self.fim,
            text,
            "",
            order="psm",
            snippets=window.snippets,
            repo_name=request.repo_name,
            path=request.path,
        )
        return prompt[: prompt.rindex(self.fim.suffix)]

    def forget_windows(self) -> None:
        """Forget every document's windows (their states stay with the backend until replaced)."""
        self._windows.clear()
        self._window_snippets.clear()

    def warm_window(self, request: CompletionRequest, cancel: CancelToken | None = None) -> int:
        """Process the head that the window prompts of cursors near ``request``'s share
        (``place_window``), so that a completion at any of them evaluates only its suffix. Only
        in ``auto`` order, on backends that keep prompt state; returns the tokens evaluated."""
        if self.fim_order != "auto" or self.fim is None:
            return 0
        return self.backend.hold(self.place_window(request), cancel)

    def hold_prompt(self, request: CompletionRequest, order: str, cancel: CancelToken | None = None) -> int:
        """Process ``request``'s prompt in ``order`` without answering it (the SPM prompt at a
        resting cursor: the keystrokes after it then evaluate only what was typed); returns the
        tokens evaluated (0 on backends that keep no prompt state)."""
        prefix, suffix = self.reachable(request.prefix, request.suffix)
        prompt, _, _ = self._prompt(replace(request, prefix=prefix, suffix=suffix), order)
        return self.backend.hold(prompt, cancel)

    def _stop_strings(self) -> tuple[str, ...]:
        return self.fim.stop_tokens if self.fim is not None else ()

    def _run_single(
        self, prompt: str, config: GenerationConfig, mode: str, cancel: CancelToken
    ) -> tuple[str, int]:
        """Generate one raw completion; in single-line mode stop once the first line is complete."""
        pieces: list[str] = []
        count = 0
        stream = self.stream(
            prompt,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=config.seed,
            stop=self._stop_strings(),
            cancel=cancel,
            heal=config.heal,
        )
        try:
            for piece in stream:
                pieces.append(piece)
                count += 1
                if mode == "single" and "\n" in "".join(pieces).lstrip("\n"):
                    break
        finally:
            stream.close()
        return "".join(pieces), count

    def _cache_suffix(self, suffix: str) -> str:
        """The suffix the completion cache is keyed on: the prompt's (auto-closed brackets and
        quotes left out, when they are left out of the prompt), so that typing an opener still
        types through the suggestion on screen."""
        return prompt_suffix(suffix) if self.elide_closing_rest else suffix

    def reachable(self, prefix: str, suffix: str) -> tuple[str, str]:
        """The text around the cursor the prompt budget can reach (``engine.budget.reachable_text``):
        what the cache is keyed on and the prompt is fitted from."""
        return reachable_text(prefix, suffix, self.max_prompt_tokens)

    def cached(self, prefix: str, suffix: str) -> Completion | None:
        """The completion the typed-through cache holds for this cursor context, or None
        (answers without the model)."""
        start = time.perf_counter()
        return self._cached_within_reach(*self.reachable(prefix, suffix), start)

    def _cached_within_reach(self, prefix: str, suffix: str, start: float) -> Completion | None:
        """``cached`` for text already bounded by ``reachable``."""
        key = self._cache_suffix(suffix)
        hit = self.cache.get(prefix, key)
        if hit is not None and key != suffix:
            # shown before the closers the editor inserted since: fit it to them
            hit = fit_to_suffix(hit, prefix, suffix) or None
        if hit is None:
            return None
        return Completion(
            text=hit,
            model=self.name,
            latency_ms=(time.perf_counter() - start) * 1000,
            choices=[hit],
            raw=hit,
            cached=True,
        )

    def complete(
        self,
        prefix: str,
        suffix: str = "",
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        snippets: Sequence[Snippet] = (),
        repo_name: str | None = None,
        path: str | None = None,
        cancel: CancelToken | None = None,
        use_cache: bool = True,
        mode: str = "auto",
        n: int = 1,
        seed: int | None = None,
    ) -> Completion:
        """A post-processed fill-in-the-middle completion at the cursor between ``prefix`` and ``suffix``.

        Served from the typed-through cache when the user typed what was suggested; otherwise the
        prompt is budgeted, generated, post-processed and cached. ``n > 1`` samples several choices
        (at ``CHOICE_TEMPERATURE`` at least).
        """
        start = time.perf_counter()
        if n < 1:
            raise ValueError("n must be at least 1")
        cancel = cancel or CancelToken()
        prefix, suffix = self.reachable(prefix, suffix)
        if use_cache and n == 1:
            hit = self._cached_within_reach(prefix, suffix, start)
            if hit is not None:
                return hit
        resolved = decide_mode(prefix, suffix) if mode == "auto" else mode
        place = CompletionRequest(
            "", prefix, suffix, tuple(snippets), repo_name, path, max_new_tokens=max_new_tokens
        )
        prompt, prompt_tokens, order = self._prompt(place, self.fim_order)
        if n == 1:
            config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
            raw, generated = self._run_single(prompt, config, resolved, cancel)
            raws = [raw]
        else:
            config = GenerationConfig(
                max_new_tokens=max_new_tokens,
                temperature=max(temperature, CHOICE_TEMPERATURE),
                seed=seed,
                stop=self._stop_strings(),
            )
            raws = self._run_many(prompt, config, n, cancel)
            generated = sum(self.count_tokens(r) for r in raws)
        choices = [postprocess_completion(r, prefix, suffix, mode=resolved) for r in raws]
        unique = list(dict.fromkeys(c for c in choices if c)) or [""]
        text = unique[0]
        if use_cache and text and not cancel.cancelled:
            self.cache.put(prefix, self._cache_suffix(suffix), text)
        latency = (time.perf_counter() - start) * 1000
        log.debug("completion %d prompt tokens, %.0f ms, %d chars", prompt_tokens, latency, len(text))
        return Completion(
            text=text,
            model=self.name,
            latency_ms=latency,
            choices=unique,
            raw=raws[0],
            prompt_tokens=prompt_tokens,
            generated_tokens=generated,
            cached=False,
            cancelled=cancel.cancelled,
            prompt_order=order,
        )

    def complete_request(self, request: CompletionRequest, cancel: CancelToken | None = None) -> Completion:
        """``complete`` for a typed request (``engine.types.CompletionRequest``)."""
        return self.complete(
            request.prefix,
            request.suffix,
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
            snippets=request.snippets,
            repo_name=request.repo_name,
            path=request.path,
            cancel=cancel,
            use_cache=request.use_cache,
            mode=request.mode,
            n=request.choices,
        )

    def _run_many(self, prompt: str, config: GenerationConfig, n: int, cancel: CancelToken) -> list[str]:
        """``n`` sampled raw completions of one prompt (batched where the backend batches)."""
        outputs = self.backend.generate_batch([prompt] * n, config, cancel)
        return ["".join(apply_stops([o], config.stop)) for o in outputs]

    # ------------------------------------------------------------------ chat

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]], context: str) -> str:
        """The conversation as a prompt in the model's chat style (its own template when it has one)."""
        if self.chat_style == TEMPLATE_STYLE and self.tokenizer is not None:
            return build_template_chat_prompt(self.tokenizer, messages, context=context)
        return build_chat_prompt(messages, style=self.chat_style, context=context)

    def warm_chat(
        self, messages: Sequence[Mapping[str, Any]], context: str, cancel: CancelToken | None = None
    ) -> int:
        """Process the head of the prompt of the question the user is about to ask: the
        conversation so far (``messages``) and ``context``, up to where the question will go. The
        question's answer then evaluates only the question (when its context begins with
        ``context``). Returns the tokens evaluated (0 on backends that keep no prompt state)."""
        probe = [*messages, {"role": "user", "content": CHAT_PROBE}]
        prompt = self.chat_prompt(probe, context)
        head = prompt[: prompt.index(CHAT_PROBE)]
        room = self.context_window - self.context_window // 2
        if self.count_tokens(head) > room:  # the question's prompt would be cut to fit
            return 0
        return self.backend.hold(head, cancel)

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        context: str = "",
        max_new_tokens: int = 512,
        temperature: float = 0.2,
        cancel: CancelToken | None = None,
    ) -> Generator[str, None, None]:
        """Stream the assistant's answer to ``messages`` (the prompt follows the model's chat style),
        dropping the oldest turns, then the end of ``context``, until it fits the context window.
        An answer that falls into a loop (``answer_loops``) ends there."""
        messages = list(messages)
        if not messages:
            raise ValueError("chat needs at least one message")
        room = self.context_window - min(max_new_tokens, self.context_window // 2)
        prompt = self.chat_prompt(messages, context)
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens > room and len(messages) > 1:
            # How many oldest turns to drop, from each message's tokens counted once (a turn's
            # framing estimated from the prompt without them), then checked on the real prompt.
            sizes = [self.count_tokens(m["content"]) for m in messages]
            alone = self.count_tokens(self.chat_prompt(messages[-1:], context)) - sizes[-1]
            framing = max(0.0, (prompt_tokens - sum(sizes) - alone) / (len(messages) - 1))
            first, estimate = 0, float(prompt_tokens)
            while estimate > room and first < len(messages) - 1:
                estimate -= sizes[first] + framing
                first += 1

            def measured(start: int) -> tuple[str, int]:
                text = self.chat_prompt(messages[start:], context)
                return text, self.count_tokens(text)

            prompt, prompt_tokens = measured(first)
            if prompt_tokens > room:  # dropped too few
                while prompt_tokens > room and first < len(messages) - 1:
                    first += 1
                    prompt, prompt_tokens = measured(first)
            else:  # maybe too many: put back the turns that still fit
                while first > 0 and (earlier := measured(first - 1))[1] <= room:
                    first, (prompt, prompt_tokens) = first - 1, earlier
            messages = messages[first:]
        lines = context.splitlines(keepends=True)
        while prompt_tokens > room and lines:
            lines = lines[: len(lines) // 2] if len(lines) > 1 else []
            prompt = self.chat_prompt(messages, "".join(lines))
            prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens >= self.context_window:
            raise GenerationError(
                f"the last message alone has {prompt_tokens} tokens, more than the model's context window "
                f"of {self.context_window}; send a shorter message."
            )
        cancel = cancel or CancelToken()
        # An answer that ends before any visible text (the model went straight to the next turn)
        # is drawn again, hotter: a user who asked something should get an answer.
        for attempt_temperature in (temperature, max(temperature, 0.7), max(temperature, 1.0)):
            answered = False
            held: list[str] = []  # whitespace before any visible text: shown only with an answer
            answer = ""
            pieces = self.stream(
                prompt,
                max_new_tokens=min(max_new_tokens, self.context_window - prompt_tokens),
                temperature=attempt_temperature,
                stop=chat_stop_strings(self.chat_style),
                cancel=cancel,
            )
            try:
                for piece in pieces:
                    if not answered and not piece.strip():
                        held.append(piece)
                        continue
                    if not answered:
                        answered = True
                        yield from held
                    yield piece
                    answer += piece
                    if answer_loops(answer):  # the rest would be more of the same, up to the limit
                        log.info(
                            "chat: the answer fell into a loop after %d characters; stopped", len(answer)
                        )
                        return
            finally:
                pieces.close()
            if answered or cancel.cancelled:
                return
            log.info(
                "chat: the model's answer was empty; drawing again at temperature %.1f", attempt_temperature
            )

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    def __enter__(self) -> CodeModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- loading


def _with_hf_checkpoint(source: Any) -> Any:
    """A GGUF source as the dequantized Hugging Face checkpoint the transformers and CTranslate2
    backends load (derived once, cached); any other source as it is."""
    if source.kind != "gguf":
        if source.lora_file is not None and source.hf_dir is None:
            from engine.errors import BackendUnavailableError

            raise BackendUnavailableError(
                f"{source.root} holds a LoRA adapter that llama.cpp applies to its base; use --backend llamacpp, "
                "or export it merged for the other backends (`stackcoder train export RUN --merge`)."
            )
        return source
    import dataclasses

    from engine.loading import hf_checkpoint, inspect_hf

    hf = inspect_hf(hf_checkpoint(source))
    return dataclasses.replace(hf, name=source.name, context_window=source.context_window)


def _load_ct2(path: str | None, *, threads: int, device: str, quantization: str | None) -> tuple[Any, Any]:
    from engine.backends.ct2 import CT2Backend
    from engine.convert import ct2_folder_for, default_quantization
    from engine.loading import inspect_model, source_tokenizer

    source = _with_hf_checkpoint(inspect_model(path))
    if source.kind == "ct2":
        folder, compute_type = source.root, quantization or "default"
    else:
        quant = quantization or default_quantization(device)
        folder, compute_type = ct2_folder_for(source, quant), "default"
    tokenizer = source_tokenizer(source)
    backend = CT2Backend(
        folder, tokenizer, source.context_window, device=device, threads=threads, compute_type=compute_type
    )
    return source, backend


def _load_transformers(
    path: str | None, *, threads: int, device: str, quantization: str | None
) -> tuple[Any, Any]:
    from engine.backends.hf import HFBackend
    from engine.errors import BackendUnavailableError
    from engine.loading import inspect_model, source_tokenizer

    source = _with_hf_checkpoint(inspect_model(path))
    if source.hf_dir is None:
        raise BackendUnavailableError(
            f"{source.root} holds no Hugging Face checkpoint for the transformers backend; use --backend ct2."
        )
    dtype = {None: "float32", "float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}.get(
        quantization
    )
    if dtype is None:
        raise BackendUnavailableError(
            f"the transformers backend runs float32, float16 or bfloat16, not {quantization}; "
            "use --backend ct2 for int8."
        )
    tokenizer = source_tokenizer(source)
    backend = HFBackend(
        source.hf_dir, tokenizer, source.context_window, device=device, threads=threads, dtype=dtype
    )
    return source, backend


def _load_llamacpp(
    path: str | None, *, threads: int, device: str, quantization: str | None
) -> tuple[Any, Any]:
    from engine.backends.llamacpp import LlamaCppBackend
    from engine.errors import BackendUnavailableError
    from engine.gguf_export import GGUF_TYPES, gguf_file_for
    from engine.loading import inspect_model, source_tokenizer

    source = inspect_model(path)
    if source.hf_dir is None and source.gguf_file is None:
        raise BackendUnavailableError(
            f"{source.root} holds no Hugging Face checkpoint to export for llama.cpp; use --backend ct2."
        )
    if device != "cpu":
        raise BackendUnavailableError(
            "the llamacpp backend runs on the CPU here; use --backend ct2 for CUDA."
        )
    if source.gguf_file is not None:  # a GGUF model runs as it is, in its own quantization
        gguf_file = source.gguf_file
    else:
        quant = quantization or "q8_0"
        if quant not in GGUF_TYPES:
            raise BackendUnavailableError(
                f"the llamacpp backend runs {', '.join(GGUF_TYPES)}, not {quant}; pick one of those."
            )
        gguf_file = gguf_file_for(source.hf_dir, quant)
    tokenizer = source_tokenizer(source)
    backend = LlamaCppBackend(
        gguf_file, tokenizer, source.context_window, threads=threads, lora_path=source.lora_file
    )
    return source, backend


def _torch_backend(
    source: Any, tokenizer: Any, *, threads: int, device: str, quantization: str | None
) -> Any:
    """The torch backend of an inspected model (``_load_torch``, and ``auto``'s prompt side)."""
    from engine.backends.torch_native import TorchBackend
    from engine.errors import BackendUnavailableError

    if source.hf_dir is None:
        raise BackendUnavailableError(
            f"{source.root} holds no Hugging Face checkpoint for the torch backend; use --backend ct2."
        )
    if device != "cpu":
        raise BackendUnavailableError("the torch backend runs on the CPU; use --backend ct2 for CUDA.")
    if quantization not in (None, "bfloat16", "float32"):
        raise BackendUnavailableError(
            f"the torch backend runs prompts in bfloat16 or float32, not {quantization}; "
            "use --backend ct2 for int8."
        )
    return TorchBackend(
        source.hf_dir, tokenizer, source.context_window, threads=threads, prompt_dtype=quantization
    )


def _load_torch(path: str | None, *, threads: int, device: str, quantization: str | None) -> tuple[Any, Any]:
    from engine.loading import inspect_model, source_tokenizer

    source = inspect_model(path)
    tokenizer = source_tokenizer(source)
    return source, _torch_backend(
        source, tokenizer, threads=threads, device=device, quantization=quantization
    )


def _load_routed(path: str | None, *, threads: int, device: str, quantization: str | None) -> tuple[Any, Any]:
    from engine.backends.routed import RoutedBackend

    source, steps = _load_ct2(path, threads=threads, device=device, quantization=quantization)
    try:  # the model was inspected and its tokenizer loaded once, for both engines
        prompts = _torch_backend(source, steps.tokenizer, threads=threads, device=device, quantization=None)
    except Exception:
        steps.close()
        raise
    return source, RoutedBackend(prompts, steps)


BACKEND_LOADERS = {
    "auto": _load_routed,
    "ct2": _load_ct2,
    "transformers": _load_transformers,
    "llamacpp": _load_llamacpp,
    "torch": _load_torch,
}


def resolve_backend(
    backend: str, path: str | None, device: str = "cpu", quantization: str | None = None
) -> str:
    """What ``auto`` stands for at ``path``: itself (``engine.backends.routed``: CTranslate2 with
    the torch backend for cold prompts) for a small GPTBigCode checkpoint on a CPU with bfloat16
    matrix instructions (the embedded default: a cold 1k-token completion in about two thirds
    of CTranslate2's time, ``benchmarks/cold_prompt.py``), else ``ct2`` (and ``ct2`` whenever a
    quantization is asked for). Any other name is returned as is."""
    if backend != "auto":
        return backend
    if quantization is not None:
        return "ct2"
    from engine.backends.torch_native import should_use
    from engine.catalog import default_model
    from engine.errors import EngineError
    from engine.loading import inspect_model

    try:
        source = inspect_model(path if path is not None else default_model().reference)
    except EngineError:
        return "ct2"  # the ct2 loader reports what is wrong with the path
    if source.kind == "gguf" or (source.gguf_file is not None and source.hf_dir is None):
        return "llamacpp"  # a GGUF file, or an adapter bundle over a GGUF base
    return "auto" if should_use(source.hf_dir, source.family, device) else "ct2"


def load_model(
    path: str | Any | None = None,
    *,
    backend: str = "auto",
    threads: int = 0,
    device: str = "cpu",
    quantization: str | None = None,
    **options: Any,
) -> CodeModel:
    """Load a model for completion and chat.

    Args:
        path: a Hugging Face checkpoint folder, a converted CTranslate2 folder, a stackcoder bundle
            or a catalog name (None: ``engine.catalog.default_model()``); for ``backend="http"`` the server's base URL.
        backend: "auto" (``resolve_backend``: for small GPTBigCode checkpoints on CPUs with
            bfloat16 matrix instructions, CTranslate2 with the torch backend for cold prompts;
            else ct2), "torch" (``engine.backends.torch_native``),
            "ct2" (converts into the content-keyed cache on first use), "transformers"
            (the reference), "llamacpp" (optional extra; exports GGUF into the cache on first use;
            reuses the KV cache of the common prompt prefix across requests) or "http" (an
            OpenAI-compatible completions server).
        threads: CPU threads (0 = all cores; one for very small CTranslate2 models, which
            decode faster on a single thread).
        device: "cpu" or "cuda".
        quantization: CTranslate2 compute type (default int8 on CPU, int8_float16 on CUDA), the
            GGUF type for llamacpp (q8_0 by default, f16, f32), or the torch backend's prompt
            dtype (bfloat16 where the CPU has bf16 matrix instructions, else float32).
        options: passed to ``CodeModel`` (fim_order, max_prompt_tokens, cache_size) or, for http,
            to ``HttpBackend`` (model, api_key, timeout, fim, context_window).
    Raises:
        EngineError: one sentence saying what is wrong with the path, the model or the backend.
    """
    import os

    from engine.catalog import default_model
    from engine.errors import BackendUnavailableError
    from engine.prompts import detect_fim_format

    known = sorted({*BACKEND_LOADERS, "http"})
    if backend not in known:
        raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {', '.join(known)}.")
    if device not in ("cpu", "cuda"):
        raise BackendUnavailableError(f"unknown device {device!r}; choose cpu or cuda.")
    model_options = {
        k: options.pop(k) for k in ("fim_order", "max_prompt_tokens", "cache_size") if k in options
    }
    if backend == "http":
        from engine.backends.http import HttpBackend

        if path is None:
            raise BackendUnavailableError(
                "the http backend needs the server's base URL, e.g. http://127.0.0.1:8000/v1."
            )
        remote = HttpBackend(str(path), **options)
        return CodeModel(
            remote,
            name=remote.name,
            family=remote.family,
            fim=remote.fim,
            backend_name="http",
            **model_options,
        )
    if options:
        raise TypeError(f"unexpected options for the {backend} backend: {', '.join(sorted(options))}")
    backend = resolve_backend(backend, None if path is None else str(path), device, quantization)
    if backend not in ("ct2", "auto"):  # CTranslate2 picks its own default (see default_threads)
        threads = threads or os.cpu_count() or 1
    source, local = BACKEND_LOADERS[backend](
        str(path) if path is not None else default_model().reference,
        threads=threads,
        device=device,
        quantization=quantization,
    )
    fim = detect_fim_format(local.tokenizer.get_vocab().keys())
    threads = local.threads or threads
    log.info("loaded %s (%s, %s backend, %d threads)", source.name, source.family, backend, threads)
    return CodeModel(
        local, name=source.name, family=source.family, fim=fim, backend_name=backend, **model_options
    )
