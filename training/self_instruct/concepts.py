"""S->C: the programming concepts a seed exercises, sampled from the base model."""

from __future__ import annotations

from typing import Any

from training.self_instruct.generation import Sampling
from training.self_instruct.prompts import MAX_SHOTS, STOPS, concepts_prompt

__all__ = ["SAMPLING", "SHOTS", "prompt", "parse"]

SAMPLING = Sampling(max_new_tokens=64, temperature=0.7, stop=("\n", *STOPS))

SHOTS = MAX_SHOTS["concepts"]  # few-shot examples at most


def prompt(seed: dict[str, Any], shots: int | None = None) -> str:
    return concepts_prompt(seed["code"], shots)


def parse(seed: dict[str, Any], texts: list[str]) -> tuple[dict[str, Any] | None, str]:
    """One line of comma-separated concepts (2 to 12 of them, each a few words)."""
    concepts = [c.strip(" .") for c in texts[0].strip().split(",") if c.strip(" .")]
    if not 1 <= len(concepts) <= 12 or any(len(c.split()) > 8 for c in concepts):
        return None, "concepts_unusable"
    return {"seed_id": seed["id"], "seed": seed["code"], "concepts": ", ".join(concepts)}, "ok"
