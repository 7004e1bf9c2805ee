"""Prompting the model for many items at once: bounded concurrency, progress, results as they come."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["TextGenerator", "Sampling", "generate_all"]

log = logging.getLogger(__name__)


class TextGenerator(Protocol):
    """What the pipeline needs from a model: ``engine.load_model(...)`` returns one."""

    name: str

    def generate(self, prompt: str, **kwargs: Any) -> str: ...


@dataclass(frozen=True)
class Sampling:
    """Decoding settings of one stage."""

    max_new_tokens: int
    temperature: float = 0.7  # 0 = greedy
    top_p: float = 0.95
    stop: tuple[str, ...] = ()


def generate_all(
    model: TextGenerator,
    jobs: Sequence[tuple[str, str, int]],
    sampling: Sampling,
    on_result: Callable[[str, str | None, str | None], None],
    *,
    concurrency: int = 1,
    seed: int = 0,
    desc: str = "generate",
    progress: bool = True,
) -> None:
    """Generate for every ``(key, prompt, sample_index)`` and call ``on_result(key, text, error)``.

    Requests run ``concurrency`` at a time (useful against a remote server); a failed request
    is reported with its error and the others go on.
    """
    from tqdm import tqdm

    def one(job: tuple[str, str, int]) -> tuple[str, str | None, str | None]:
        key, prompt, index = job
        try:
            text = model.generate(
                prompt,
                max_new_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                seed=(seed + zlib.crc32(key.encode()) % 1_000_003 + 7919 * index)
                if sampling.temperature > 0
                else None,
                stop=sampling.stop,
            )
            return key, text, None
        except Exception as exc:  # one failed request must not stop a long run
            log.warning("generation for %s failed: %s", key, exc)
            return key, None, f"{type(exc).__name__}: {exc}"

    with tqdm(total=len(jobs), desc=desc, unit="req", disable=not progress) as bar:
        if concurrency <= 1:
            for job in jobs:
                on_result(*one(job))
                bar.update(1)
            return
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for future in as_completed([pool.submit(one, job) for job in jobs]):
                on_result(*future.result())
                bar.update(1)
