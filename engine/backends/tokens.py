"""What every backend that runs a model locally shares: tokens in, text pieces out.

``LocalBackend.stream`` tokenizes the prompt, heals the prompt's last token (see ``TokenHealer``),
asks for token ids one at a time (``generate_ids``) and turns them into text with
``IncrementalDecoder``. ``generate_ids`` does what every runtime shares (a request cancelled
before it starts never runs; the prompt must fit the context window, which bounds the new tokens)
and hands the rest to the subclass's ``decode_ids``: the runtime's own decoding loop.
"""

from __future__ import annotations

import abc
import bisect
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from engine.backends.base import Backend
from engine.errors import GenerationError
from engine.generation import CancelToken, GenerationConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# Special tokens that end a generation when the vocabulary has them (besides the tokenizer's EOS).
STOP_TOKENS = (
    "<|endoftext|>",
    "<file_sep>",
    "<fim_pad>",
    "<|file_separator|>",
    "<|fim_pad|>",
    "<EOT>",
    "<|im_end|>",
    "<|file_sep|>",
    "<|repo_name|>",  # Qwen2.5-Coder: end of a chat turn, repository context
)


class IncrementalDecoder:
    """Turns token ids into text pieces as they arrive, holding back incomplete UTF-8 sequences.

    Decodes a small window of the last tokens each step (the prefix/read offset scheme), so the
    pieces concatenate to exactly ``tokenizer.decode(all_ids)``. ``skip_prefix`` drops that many
    leading characters of the output (the text token healing removed from the prompt).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerFast, skip_prefix: int = 0) -> None:
        self._tokenizer = tokenizer
        # the Rust tokenizer decodes directly (the transformers wrapper costs more than the decode)
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0
        self._skip = skip_prefix

    def _decode(self, ids: Sequence[int]) -> str:
        if self._backend is not None:
            return self._backend.decode(list(ids), skip_special_tokens=True)
        return self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        """Add one token; return the newly complete text (may be empty)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        if new_text.endswith("\ufffd") or len(new_text) <= len(prefix_text):
            return ""
        piece = new_text[len(prefix_text) :]
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return self._drop_skipped(piece)

    def flush(self) -> str:
        """Text still held back at the end of the generation."""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return self._drop_skipped(new_text[len(prefix_text) :])

    def _drop_skipped(self, piece: str) -> str:
        if self._skip:
            dropped = min(self._skip, len(piece))
            self._skip -= dropped
            piece = piece[dropped:]
        return piece


@dataclass(frozen=True)
class Healing:
    """A prompt backed off to a token boundary and the tokens allowed first to restore it."""

    ids: list[int]  # prompt ids without the healed tail
    prompt: list[int]  # the prompt's ids before healing
    removed: str  # text of the removed tail, to be reproduced by the first generated tokens
    allowed: tuple[int, ...]  # token ids consistent with ``removed`` (see ``TokenHealer.consistent``)


class TokenHealer:
    """Token healing: a prompt that ends mid-merge (e.g. right after a newline, which the tokenizer
    normally merges with the next line's indentation) is backed off by one token, and the first
    generated tokens are constrained to reproduce the removed text.

    The constraint allows, at each step, the tokens *consistent* with the text still to reproduce:
    those that start with it (the usual merge, e.g. a newline plus deeper indentation) and those
    that are a prefix of it. The second kind matters: a byte-level BPE puts the last space of an
    indentation in front of the next word (``"\n        return"`` is ``"\n" + 7 spaces`` then
    ``" return"``), so the text a trained model produces after a newline is a shorter whitespace
    token followed by a word token. Allowing only extensions would force an indentation the model
    never saw, and it answers with one level too many.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerFast) -> None:
        self._tokenizer = tokenizer
        self._special = set(tokenizer.all_special_ids)
        self._texts: list[str] | None = None
        self._by_text: tuple[list[str], list[int]] | None = None  # token texts sorted, and their ids
        self._ids_of: dict[str, list[int]] | None = None  # token text -> ids (non-special)

    def token_texts(self) -> list[str]:
        if self._texts is None:
            size = len(self._tokenizer)
            self._texts = self._tokenizer.batch_decode(
                [[i] for i in range(size)], skip_special_tokens=False, clean_up_tokenization_spaces=False
            )
        return self._texts

    @lru_cache(maxsize=1024)  # noqa: B019  (one healer per loaded model; bounded)
    def _extensions(self, text: str) -> tuple[int, ...]:
        """Ids of the (non-special) tokens whose text starts with ``text``, ascending.

        The tokens sharing a prefix are one run of the sorted token texts: a binary search finds
        its start, so a keystroke costs microseconds instead of a scan of the vocabulary."""
        if self._by_text is None:
            pairs = sorted((t, i) for i, t in enumerate(self.token_texts()) if i not in self._special)
            self._by_text = [t for t, _ in pairs], [i for _, i in pairs]
        texts, ids = self._by_text
        found = []
        for k in range(bisect.bisect_left(texts, text), len(texts)):
            if not texts[k].startswith(text):
                break
            found.append(ids[k])
        return tuple(sorted(found))

    @lru_cache(maxsize=1024)  # noqa: B019  (one healer per loaded model; bounded)
    def consistent(self, text: str) -> tuple[int, ...]:
        """Ids of the tokens that start with ``text`` or are a non-empty prefix of it, ascending."""
        if self._ids_of is None:
            ids_of: dict[str, list[int]] = {}
            for i, t in enumerate(self.token_texts()):
                if t and i not in self._special and "\ufffd" not in t:
                    ids_of.setdefault(t, []).append(i)
            self._ids_of = ids_of
        prefixes = [i for k in range(1, len(text)) for i in self._ids_of.get(text[:k], ())]
        return tuple(sorted({*self._extensions(text), *prefixes}))

    def rest_after(self, text: str, token_id: int) -> str:
        """What is still to reproduce of ``text`` after generating ``token_id``."""
        produced = self.token_texts()[token_id]
        return text[len(produced) :] if text.startswith(produced) and len(produced) < len(text) else ""

    def heal(self, ids: list[int]) -> Healing | None:
        """The healing of ``ids``, or None when the last token cannot be extended."""
        if len(ids) < 2 or ids[-1] in self._special:
            return None
        removed = self.token_texts()[ids[-1]]
        if not removed or "\ufffd" in removed:
            return None
        if len(self._extensions(removed)) <= 1:
            return None  # nothing merges with it: the prompt's last token is already final
        return Healing(ids=ids[:-1], prompt=list(ids), removed=removed, allowed=self.consistent(removed))


class OptimisticHealing:
    """When to try a healed prompt without the constrained step.

    A trained model usually continues a healed prompt with the removed text itself (or a token
    extending it): then one unconstrained request gives the same greedy output as the
    constrained step followed by the continuation, and saves a model call. Tried while at least
    half of the last ``window`` tries succeeded; once they mostly fail (random weights, an
    unusual prompt style) only every ``probe_every``-th healed request tries again.
    """

    def __init__(self, window: int = 16, probe_every: int = 32, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._probe_every = probe_every
        self._since_probe = 0
        self.hits = 0  # requests answered without the constrained step
        self.misses = 0  # tries that fell back to it

    def attempt(self) -> bool:
        """Whether the next healed request should try the unconstrained way first."""
        if not self.enabled:
            return False
        if len(self._outcomes) < 4 or 2 * sum(self._outcomes) >= len(self._outcomes):
            return True
        self._since_probe += 1
        if self._since_probe >= self._probe_every:
            self._since_probe = 0
            return True
        return False

    def record(self, succeeded: bool) -> None:
        """The outcome of a try."""
        self._outcomes.append(succeeded)
        if succeeded:
            self.hits += 1
        else:
            self.misses += 1


class LocalBackend(Backend):
    """A backend that runs the model in this process and exposes its tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, context_window: int) -> None:
        self._tokenizer = tokenizer
        self.context_window = context_window
        self._healer = TokenHealer(tokenizer)
        self.optimistic_healing = OptimisticHealing()
        vocab = tokenizer.get_vocab()
        stops = {vocab[t] for t in STOP_TOKENS if t in vocab}
        if tokenizer.eos_token_id is not None:
            stops.add(tokenizer.eos_token_id)
        self.stop_ids: tuple[int, ...] = tuple(sorted(stops))

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The model's fast tokenizer."""
        return self._tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS added)."""
        return self._tokenizer(text, add_special_tokens=False)["input_ids"]

    def budget(self, prompt_len: int, max_new_tokens: int) -> int:
        """New tokens that fit after a prompt of ``prompt_len``; raises if the prompt alone does not fit."""
        if prompt_len >= self.context_window:
            raise GenerationError(
                f"the prompt has {prompt_len} tokens but the model's context window is "
                f"{self.context_window}; shorten the prompt."
            )
        return min(max_new_tokens, self.context_window - prompt_len)

    def generate_ids(
        self,
        ids: list[int],
        config: GenerationConfig,
        cancel: CancelToken | None = None,
        *,
        first_allowed: Sequence[int] | None = None,
        prompt: Sequence[int] | None = None,
    ) -> Iterator[int]:
        """Yield generated token ids (stop tokens excluded), the first one from ``first_allowed``
        when given; stop at a stop token, after ``config.max_new_tokens`` or on cancel.

        ``prompt`` is the request's prompt before token healing (``ids`` when not given): ``ids``
        may lack its last token and carry tokens generated by healing steps, and backends that
        cache prompt state choose the reusable head from the prompt alone. Raises
        ``GenerationError`` when the prompt does not fit the context window."""
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            return
        max_new = self.budget(len(ids), config.max_new_tokens)
        yield from self.decode_ids(ids, config, cancel, max_new, first_allowed=first_allowed, prompt=prompt)

    @abc.abstractmethod
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
        """The runtime's decoding loop behind ``generate_ids``: at most ``max_new`` ids (the
        prompt is known to fit), checking ``cancel`` at every step."""

    def stream(
        self, prompt: str, config: GenerationConfig, cancel: CancelToken | None = None
    ) -> Generator[str, None, None]:
        """Yield text pieces of the continuation of ``prompt`` (stop strings are the caller's job)."""
        ids = self.encode(prompt)
        healing = self._healer.heal(ids) if config.heal else None
        if healing is None:
            generated, skip = self.generate_ids(ids, config, cancel), 0
        else:
            generated, skip = self._healed_ids(healing, config, cancel), len(healing.removed)
        decoder = IncrementalDecoder(self._tokenizer, skip_prefix=skip)
        for token_id in generated:
            piece = decoder.push(token_id)
            if piece:
                yield piece
        tail = decoder.flush()
        if tail:
            yield tail

    def _healed_ids(
        self, healing: Healing, config: GenerationConfig, cancel: CancelToken | None
    ) -> Iterator[int]:
        """Generated ids after a healed prompt: constrained steps until the removed text is
        reproduced, then free generation (``config.max_new_tokens`` of it, the removed text aside)."""
        if config.greedy and self.optimistic_healing.attempt():
            # One request without the constraint: when its first token reproduces the removed
            # text, the greedy output is the constrained one (max_new_tokens + 1 keeps its length).
            unconstrained = self.generate_ids(
                list(healing.ids),
                replace(config, max_new_tokens=config.max_new_tokens + 1),
                cancel,
                prompt=healing.prompt,
            )
            first = next(unconstrained, None)
            if first is None and cancel is not None and cancel.cancelled:
                return
            # (None: a stop token came first, which the constrained step never picks)
            covered = (
                first is not None
                and first in healing.allowed
                and not self._healer.rest_after(healing.removed, first)
            )
            self.optimistic_healing.record(covered)
            if covered:
                yield first
                yield from unconstrained
                return
            unconstrained.close()
        ids, remaining, allowed = list(healing.ids), healing.removed, healing.allowed
        one_step = replace(config, max_new_tokens=1)
        while remaining and allowed:
            step = list(
                self.generate_ids(ids, one_step, cancel, first_allowed=allowed, prompt=healing.prompt)
            )
            if not step:
                return  # cancelled
            yield step[0]
            ids.append(step[0])
            remaining = self._healer.rest_after(remaining, step[0])
            allowed = self._healer.consistent(remaining) if remaining else ()
        yield from self.generate_ids(ids, config, cancel, prompt=healing.prompt)
