"""Docstring-quality judgement: the model answers a few-shot yes/no question per seed, greedily."""

from __future__ import annotations

from typing import Any

from training.self_instruct.generation import Sampling
from training.self_instruct.prompts import MAX_SHOTS, judge_prompt

__all__ = ["SAMPLING", "SHOTS", "prompt", "parse"]

SAMPLING = Sampling(max_new_tokens=4, temperature=0.0, stop=("###",))  # the answer may follow a newline

SHOTS = MAX_SHOTS["judge"]  # few-shot examples at most


def prompt(seed: dict[str, Any], shots: int | None = None) -> str:
    return judge_prompt(seed["code"], shots)


def parse(seed: dict[str, Any], texts: list[str]) -> tuple[dict[str, Any] | None, str]:
    """Keep the seed when the model's answer (leading blank lines skipped) starts with "yes"."""
    answer = texts[0].strip().lower()
    if answer.startswith("yes"):
        return dict(seed), "yes"
    return None, "docstring_judged_poor" if answer.startswith("no") else "judge_unclear_answer"
