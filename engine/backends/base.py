"""The interface every inference backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.generation import CancelToken, GenerationConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


@runtime_checkable
class Backend(Protocol):
    """Streams generated text for a prompt.

    Backends that run the model locally expose its tokenizer (prompt budgeting, token healing);
    remote backends expose ``None``. ``stream`` yields text pieces as they are decoded, stops at
    end-of-sequence, at ``config.max_new_tokens`` and within one decoding step of
    ``cancel.cancel()``. Stop strings are applied by the caller on the text stream.
    """

    name: str
    context_window: int

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast | None: ...

    def stream(
        self, prompt: str, config: GenerationConfig, cancel: CancelToken | None = None
    ) -> Iterator[str]: ...

    def close(self) -> None: ...
