"""The interface every inference backend implements, with its optional abilities declared.

A backend streams text for a prompt (``stream``) and says what else it can do through methods
whose defaults here are the plain way: ``generate_batch`` draws several answers one after the
other, ``warm_shapes`` has nothing to prepare, ``set_pause_point`` is ignored (the runtime cannot
stop inside a prompt). Backends that can do better override them (CTranslate2 batches, the torch
backend builds its kernels ahead of the first prompt, llama.cpp evaluates long prompts in chunks
it can pause between), so callers never probe for an ability.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from engine.generation import CancelToken, GenerationConfig
from engine.stopping import apply_stops

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


class HeldTokens(NamedTuple):
    """Of a prompt's ``total`` tokens, the ``held`` leading ones a backend has processed."""

    held: int
    total: int

    @property
    def new(self) -> int:
        """The tokens a request with the prompt would evaluate."""
        return self.total - self.held


class Backend(abc.ABC):
    """Streams generated text for a prompt.

    Backends that run the model locally expose its tokenizer (prompt budgeting, token healing);
    remote backends expose ``None``. ``stream`` yields text pieces as they are decoded, stops at
    end-of-sequence, at ``config.max_new_tokens`` and within one decoding step of
    ``cancel.cancel()``. Stop strings are applied by the caller on the text stream.
    """

    name: str
    context_window: int
    threads: int = 0  # CPU threads the backend computes on (0: not its own to choose)

    @property
    @abc.abstractmethod
    def tokenizer(self) -> PreTrainedTokenizerFast | None:
        """The model's fast tokenizer, or None when the model runs elsewhere."""

    @abc.abstractmethod
    def stream(
        self, prompt: str, config: GenerationConfig, cancel: CancelToken | None = None
    ) -> Generator[str, None, None]:
        """Yield text pieces continuing ``prompt`` (a generator: closing it stops decoding)."""

    def generate_batch(
        self, prompts: Sequence[str], config: GenerationConfig, cancel: CancelToken | None = None
    ) -> list[str]:
        """Whole continuations of several prompts, in order. This default streams them one after
        the other, the i-th with seed ``config.seed + i`` (equal prompts give different samples),
        each ending at its first stop string; backends that batch override it."""
        outputs = []
        for i, prompt in enumerate(prompts):
            seeded = dataclasses.replace(config, seed=None if config.seed is None else config.seed + i)
            outputs.append("".join(apply_stops(self.stream(prompt, seeded, cancel), config.stop)))
        return outputs

    def warm_shapes(self) -> float | None:
        """Prepare what the first prompts would otherwise pay for (the torch backend builds its
        kernels per prompt shape, llama.cpp measures its passes to choose a draft length);
        returns the seconds it took, None when there is nothing to do."""
        return None

    def held_tokens(self, prompt: str) -> HeldTokens | None:
        """How many leading tokens of ``prompt`` the backend holds processed (its live prompt
        state or a saved one), out of how many: what a request with this prompt would not
        evaluate again. None (this default) when the backend cannot tell."""
        del prompt
        return None

    def hold(self, prompt: str, cancel: CancelToken | None = None) -> int:
        """Process ``prompt`` without generating, so that requests beginning with it start from
        its state; returns the tokens evaluated (0 when it was held already, or when the backend
        keeps no prompt state, as this default). Stops between chunks when ``cancel`` is set."""
        del prompt, cancel
        return 0

    def set_pause_point(self, wait: Callable[[CancelToken], None] | None) -> None:
        """Call ``wait(cancel)`` between chunks of a long prompt, so that more urgent work on the
        same CPU cores can run first (``engine.priority``); None: never pause. This default
        ignores it: the runtime evaluates a prompt in one call."""
        del wait

    @abc.abstractmethod
    def close(self) -> None:
        """Release the model or the connection."""
