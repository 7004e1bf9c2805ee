"""I->R: several sampled responses per instruction, each an implementation plus assert-based tests."""

from __future__ import annotations

import re
from typing import Any

from training.self_instruct.generation import Sampling
from training.self_instruct.prompts import MAX_SHOTS, STOPS, response_prompt

__all__ = ["SAMPLING", "SHOTS", "prompt", "parse", "split_response", "code_blocks"]

SAMPLING = Sampling(max_new_tokens=768, temperature=0.7, stop=STOPS)
_BLOCK_RE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)
_BLOCK_OR_UNCLOSED_RE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


def code_blocks(text: str, *, unclosed: bool = False) -> list[str]:
    """The Python (or unlabelled) fenced code blocks of a model's answer, in order; with
    ``unclosed``, a last block the answer did not close (generation stopped inside it) counts too."""
    return (_BLOCK_OR_UNCLOSED_RE if unclosed else _BLOCK_RE).findall(text)


def split_response(text: str) -> tuple[str, str] | None:
    """The (implementation, tests) code blocks of a response, or None when it lacks either.

    The tests are the last block that contains an ``assert``; the implementation is every block
    before it.
    """
    blocks = [b.strip("\n") for b in code_blocks(text)]
    test_index = next((i for i in range(len(blocks) - 1, 0, -1) if "assert" in blocks[i]), None)
    if test_index is None:
        return None
    implementation = "\n\n".join(blocks[:test_index]).strip()
    if not implementation:
        return None
    return implementation, blocks[test_index]


SHOTS = MAX_SHOTS["responses"]  # few-shot examples at most


def prompt(record: dict[str, Any], shots: int | None = None) -> str:
    return response_prompt(record["instruction"], shots)


def parse(record: dict[str, Any], texts: list[str]) -> tuple[dict[str, Any] | None, str]:
    """Keep the instruction with every response that has an implementation and tests."""
    candidates = []
    for text in texts:
        text = text.strip()
        parts = split_response(text)
        if parts is not None:
            candidates.append({"response": text, "implementation": parts[0], "tests": parts[1]})
    if not candidates:
        return None, "no_response_with_tests"
    return {
        "seed_id": record["seed_id"],
        "concepts": record["concepts"],
        "instruction": record["instruction"],
        "candidates": candidates,
        "samples": len(texts),
    }, "ok"
