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
    prompt_order: str = ""  # the FIM prompt the model ran: "spm", "psm" or "window" (engine.windows)


@dataclass(frozen=True)
class CompletionRequest:
    """One fill-in-the-middle completion an editor asks for at a cursor.

    ``document`` names the request's document: a newer request for the same document supersedes
    this one. ``prefix`` and ``suffix`` are the whole text before and after the cursor; the engine
    budgets them to the prompt (``engine.budget``), so callers never cut them.
    """

    document: str  # the document's URI
    prefix: str
    suffix: str = ""
    snippets: tuple[Snippet, ...] = ()  # context from other files, most useful first
    repo_name: str | None = None  # shown to models with repository context
    path: str | None = None  # the document's path in its repository (the same models)
    choices: int = 1  # completions wanted; more than one samples (``engine.model.CHOICE_TEMPERATURE``)
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 means greedy
    mode: str = "auto"  # "single" line, "multi" line, or "auto" (decided from the cursor)
    use_cache: bool = True  # answer from, and store into, the typed-through completion cache

    def __post_init__(self) -> None:
        if self.choices < 1:
            raise ValueError("choices must be at least 1")
        if self.mode not in ("auto", "single", "multi"):
            raise ValueError("mode must be auto, single or multi")

    @property
    def cacheable(self) -> bool:
        """Whether the completion cache may answer this request (one choice, cache on)."""
        return self.use_cache and self.choices == 1


@dataclass(frozen=True)
class ChatRequest:
    """A conversation to answer: ``messages`` are {"role", "content"} turns ending with the user's."""

    messages: tuple[dict[str, str], ...]
    context: str = ""  # editor and workspace context shown to the model with the conversation
    max_new_tokens: int = 512
    temperature: float = 0.2


@dataclass(frozen=True)
class CompletionCounters:
    """How completion requests were answered so far (for the status view, logs and benchmarks)."""

    model_runs: int = 0  # requests (not prefetches) the model answered to the end
    stopped_runs: int = 0  # requests whose model run a newer request stopped
    cache_hits: int = 0  # requests answered from the completion cache
    superseded: int = 0  # requests a newer one of their document cancelled
    prefetched: int = 0  # idle-time completions after a suggestion that ran the model to the end
    warmed: int = 0  # warm-ups at a cursor the user moved to that ran the model to the end
