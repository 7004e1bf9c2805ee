"""Plain data passed between the engine and its callers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Snippet:
    """A piece of another file offered to the model as context."""

    path: str
    text: str
    score: float = 0.0


@dataclass
class Completion:
    """A post-processed fill-in-the-middle completion."""

    text: str  # the best choice, post-processed
    model: str  # model name
    latency_ms: float  # wall time of the request
    choices: list[str] = field(default_factory=list)  # all post-processed choices (text first)
    raw: str = ""  # the model's output before post-processing
    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached: bool = False  # served from the completion cache without running the model
    cancelled: bool = False
