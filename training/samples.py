"""Completions of a fixed set of ordinary Python prompts with the engine, for the model card."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE_PROMPTS", "engine_samples"]

# (prefix, suffix) pairs: everyday code a completion model should handle.
SAMPLE_PROMPTS: tuple[tuple[str, str], ...] = (
    ("import os\n\n\ndef read_file(path):\n    with open(path) as f:\n        ", "\n"),
    ("def is_even(n):\n    return ", "\n"),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        ", "\n"),
    ("import json\n\n\ndef load_config(path):\n    with open(path) as fh:\n        return ", "\n"),
    ("def fibonacci(n):\n    if n < 2:\n        return n\n    return ", "\n"),
    ("for i in range(10):\n    ", "\n"),
    (
        "import argparse\n\nparser = argparse.ArgumentParser()\nparser.add_argument(",
        "\nargs = parser.parse_args()\n",
    ),
    ("def average(values):\n    total = sum(values)\n    ", "\n    return total / count\n"),
    ("try:\n    import numpy as np\nexcept ImportError:\n    ", "\n"),
    ("def __repr__(self):\n    return ", "\n"),
)


def engine_samples(bundle: str | Path, max_new_tokens: int = 24, threads: int = 0) -> list[dict]:
    """Greedy completions of SAMPLE_PROMPTS by the engine's default backend, with latency."""
    from engine import load_model

    model = load_model(str(bundle), threads=threads)
    out = []
    try:
        model.complete("import os\n", "\n", max_new_tokens=2, use_cache=False)  # one-time start-up costs
        for prefix, suffix in SAMPLE_PROMPTS:
            c = model.complete(
                prefix, suffix, max_new_tokens=max_new_tokens, temperature=0.0, use_cache=False
            )
            out.append(
                {
                    "prompt": prefix,
                    "suffix": suffix,
                    "completion": c.text,
                    "latency_ms": round(c.latency_ms, 1),
                    "backend": model.backend_name,
                }
            )
    finally:
        model.close()
    return out
