"""Generation settings and cancellation shared by every backend."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode one request."""

    max_new_tokens: int = 64  # tokens generated at most
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0  # nucleus sampling mass (1.0 = off)
    top_k: int = 0  # sample among the k most likely tokens (0 = off)
    seed: int | None = None  # sampling seed for reproducible output
    stop: tuple[str, ...] = field(default_factory=tuple)  # user stop strings (not included in output)
    heal: bool = True  # token healing of the prompt's last token (backends that see tokens)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be 0 (greedy) or positive")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be 0 (off) or positive")

    @property
    def greedy(self) -> bool:
        """True when decoding picks the most likely token at every step."""
        return self.temperature == 0.0


class CancelToken:
    """A flag a caller sets to stop a generation; backends check it at every decoding step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the generation to stop at the next decoding step."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return self._event.is_set()
