"""Choosing the next token from a step's logits (backends that see the whole vocabulary)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.generation import GenerationConfig


def sample_from_logits(
    logits: np.ndarray, candidates: Sequence[int] | None, config: GenerationConfig, rng: np.random.Generator
) -> int:
    """Pick one of ``candidates`` (None: the whole vocabulary) from full-vocabulary ``logits``:
    argmax when greedy, else temperature / top-k / top-p sampling restricted to the candidates."""
    if candidates is None and config.greedy:
        return int(np.argmax(logits))
    ids = np.arange(len(logits)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    scores = logits[ids].astype(np.float64)
    if config.greedy:
        return int(ids[int(np.argmax(scores))])
    scores = scores / config.temperature
    order = np.argsort(-scores)
    if config.top_k:
        order = order[: config.top_k]
    probs = np.exp(scores[order] - scores[order].max())
    probs /= probs.sum()
    if config.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), config.top_p) + 1)
        order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
    return int(ids[order[rng.choice(len(order), p=probs)]])
