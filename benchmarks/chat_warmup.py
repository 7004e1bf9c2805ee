"""The chat's first token for a question about a selection: cold, and with the prompt's head
processed while the user writes the question (``stackcoder/warmChat``).

The panel tells the server when the user begins writing a question; the server processes the
conversation so far and the editor's context (the file, the selection: everything before the
question in the prompt, ``CompletionService.warm_chat``). When the question is sent, only the
question and the question-dependent context remain to evaluate.

Per round, through the product's ``CompletionService`` on the default chat model, one after the
other: ``cold`` asks about a selection never seen; ``warmed`` asks about another one after its
warm-up ran (its duration is reported: a user typing the question for that long or longer gets
the whole gain). Each round's selections differ, so nothing is cached from an earlier round.
Reported: time to the first token (median), the answer's rate, the question's prompt size.

    .venv/bin/python benchmarks/chat_warmup.py --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import default_model, load_model  # noqa: E402
from engine.cpu import instruction_sets  # noqa: E402
from engine.generation import CancelToken  # noqa: E402
from engine.service import CompletionService  # noqa: E402
from engine.types import ChatRequest  # noqa: E402

SOURCE = REPO / "benchmarks" / "data" / "ledger.py"
QUESTION = "What does this function do, and is there a bug in it? Answer briefly."


def selection(source: str, variant: int) -> str:
    """A selection of about 300 tokens, different per ``variant``."""
    return f"The selected code (revision {variant}):\n" + source[:1100]


def ask(service: CompletionService, context: str, new_tokens: int) -> tuple[float, int, float]:
    """(seconds to the first piece, pieces, seconds of the whole answer)."""
    request = ChatRequest(
        messages=({"role": "user", "content": QUESTION},),
        context=context,
        max_new_tokens=new_tokens,
        temperature=0.0,
    )
    start = time.perf_counter()
    first, pieces = 0.0, 0
    for _ in service.chat(request, CancelToken()):
        if not pieces:
            first = time.perf_counter() - start
        pieces += 1
    return first, pieces, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="catalog name or path (default: the default model)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=48)
    args = parser.parse_args()

    model = load_model(args.model or default_model().reference)
    service = CompletionService(model)
    source = SOURCE.read_text(encoding="utf-8")
    results: dict[str, list[tuple[float, int, float]]] = {"cold": [], "warmed": []}
    warm_s: list[float] = []
    try:
        for round_index in range(args.rounds):
            results["cold"].append(ask(service, selection(source, 2 * round_index), args.new_tokens))
            context = selection(source, 2 * round_index + 1)
            start = time.perf_counter()
            service.warm_chat(ChatRequest(messages=(), context=context)).result(timeout=600)
            warm_s.append(time.perf_counter() - start)
            results["warmed"].append(ask(service, context, args.new_tokens))
        prompt = model.chat_prompt([{"role": "user", "content": QUESTION}], selection(source, 0))
        prompt_tokens = model.count_tokens(prompt)
    finally:
        service.close()

    print(
        f"\nmodel {model.name} ({model.backend_name}), question prompt {prompt_tokens} tokens, "
        f"{args.rounds} rounds, answers of {args.new_tokens} tokens at most; CPU: {instruction_sets()}\n"
    )
    print("| chat | first token s (median) | answer tokens/s |")
    print("|---|---:|---:|")
    for name, runs in results.items():
        first = statistics.median(r[0] for r in runs)
        rate = statistics.median((r[1] - 1) / max(r[2] - r[0], 1e-6) for r in runs)
        print(f"| {name} | {first:.2f} | {rate:.1f} |")
    cold = statistics.median(r[0] for r in results["cold"])
    warmed = statistics.median(r[0] for r in results["warmed"])
    print(
        f"\nfirst token {cold / max(warmed, 1e-6):.1f}x sooner warmed; warm-up took {statistics.median(warm_s):.1f} s (median)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
