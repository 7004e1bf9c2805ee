"""C->I: a self-contained coding task built on a seed's concepts, sampled from the base model."""

from __future__ import annotations

from typing import Any

from training.self_instruct.generation import Sampling
from training.self_instruct.prompts import MAX_SHOTS, STOPS, instruction_prompt

__all__ = ["SAMPLING", "SHOTS", "prompt", "parse"]

SAMPLING = Sampling(max_new_tokens=256, temperature=0.7, stop=STOPS)
MIN_WORDS = 8

SHOTS = MAX_SHOTS["instructions"]  # few-shot examples at most


def prompt(record: dict[str, Any], shots: int | None = None) -> str:
    return instruction_prompt(record["concepts"], shots)


def parse(record: dict[str, Any], texts: list[str]) -> tuple[dict[str, Any] | None, str]:
    """An instruction of at least a sentence that does not already contain code fences."""
    instruction = texts[0].strip()
    if len(instruction.split()) < MIN_WORDS:
        return None, "instruction_too_short"
    if "```" in instruction:
        return None, "instruction_contains_code"
    return {"seed_id": record["seed_id"], "concepts": record["concepts"], "instruction": instruction}, "ok"
