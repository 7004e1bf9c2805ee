"""Ten simple Python questions asked through the product's chat (the model's own template, greedy),
printed verbatim as markdown with the time to the first token and the streaming rate.

    .venv/bin/python benchmarks/chat_samples.py --model qwen2.5-coder-1.5b-instruct > samples.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = [
    ("How do I reverse a list in Python without changing the original?", ""),
    ("What does this function return for [3, 1, 2]?", "def f(xs):\n    return sorted(xs)[-1]\n"),
    ("Write a function that counts the vowels in a string.", ""),
    ("Why does this raise an error, and how do I fix it?", "d = {}\nd['a'] += 1\n"),
    ("How do I read a JSON file into a dict?", ""),
    ("Is this function correct for n = 0?", "def fact(n):\n    return n * fact(n - 1)\n"),
    ("What is the difference between `is` and `==`?", ""),
    ("Make this faster.", "def has_dup(xs):\n    return any(xs.count(x) > 1 for x in xs)\n"),
    ("How do I run two functions concurrently with asyncio?", ""),
    ("What does this print?", "print([i * i for i in range(4) if i % 2])\n"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="catalog name or path (default: the default model)")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    args = parser.parse_args()
    from engine import default_model, load_model

    model = load_model(args.model or default_model().reference)
    print(f"Model {model.name} ({model.backend_name}), greedy, at most {args.max_new_tokens} new tokens.\n")
    for number, (question, code) in enumerate(QUESTIONS, 1):
        start = time.perf_counter()
        first = None
        pieces = []
        for piece in model.chat([{"role": "user", "content": question}], context=code,
                                max_new_tokens=args.max_new_tokens, temperature=0.0):  # fmt: skip
            first = first or time.perf_counter()
            pieces.append(piece)
        end = time.perf_counter()
        answer = "".join(pieces)
        tokens = model.count_tokens(answer)
        rate = (tokens - 1) / (end - first) if first and end > first and tokens > 1 else 0.0
        print(f"### {number}. {question}\n")
        if code:
            print(f"Selection:\n```python\n{code}```\n")
        print(
            f"*first token {1000 * ((first or end) - start):.0f} ms, {tokens} tokens at {rate:.1f} tok/s*\n"
        )
        print("> " + answer.strip().replace("\n", "\n> ") + "\n")
    model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
