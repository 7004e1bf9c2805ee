"""The first suggestion at a new place in an open document, the cursor having rested there 1 s.

A user works at one place of a file, then clicks or scrolls to another place in it, rests the
cursor a moment and types. Both configurations warm up at a resting cursor
(``stackcoder.completion.warmOnCursorMove``, ``lsp_server.completion.warm_completion``); they
differ in the prompts:

* ``SPM only`` (the product before document windows): every prompt in SPM order, which begins with
  the text after the cursor, so nothing processed at the first place serves the second;
* ``auto`` (the product): the warm-up at the first place also processes the document's window
  around it (``engine.windows``), and the engine runs, per request, the SPM prompt or the window's
  PSM prompt, whichever it answers with fewer new tokens.

At ``--spots`` places in files of the standard library, per configuration (each its own engine
and caches, every keystroke through the product's request path and ``CompletionService``), one
after the other: the cursor rests at a first place ``--distance`` lines (at random, up or down) from
the spot until the warm-up there has finished (the user reads or types there meanwhile); it then
moves to the spot, rests ``--rest-ms``, and the user types the spot's edit (``cursor_warmup``'s
``new line`` and ``continue line``, in turn). Reported: the latency of the first and second
keystrokes at the spot, how many first keystrokes the cache answered, the prompts the model ran.

    .venv/bin/python benchmarks/new_place.py --model qwen2.5-coder-1.5b-instruct --spots 10
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from cursor_warmup import SCENARIOS, Replay, edits, pct, spots  # noqa: E402

CONFIGURATIONS = {"SPM only (before)": "spm", "auto (the product)": "auto"}


def first_place(text: str, line: int, distance: int, rng: random.Random) -> tuple[int, int]:
    """A cursor at the end of a line about ``distance`` lines above or below ``line``."""
    lines = text.split("\n")
    step = distance if rng.random() < 0.5 else -distance
    at = min(max(0, line + step), len(lines) - 1)
    return at, len(lines[at])


def visit(runner: Replay, text: str, line: int, scenario: str, distance: int, rest_s: float, seed: int):
    """Work at a first place, move to the spot, rest, type; the spot's keystroke results."""
    doc, cursor, typed = edits(text, line)[scenario]
    first = first_place(doc, cursor[0], distance, random.Random(seed))
    runner.rest(doc, *first, wait=True)
    runner.rest(doc, *cursor, wait=False)
    time.sleep(rest_s)
    lines = doc.split("\n")
    offset = sum(len(x) + 1 for x in lines[: cursor[0]]) + cursor[1]
    out = []
    for piece in typed:
        doc = doc[:offset] + piece + doc[offset:]
        offset += len(piece)
        before = doc[:offset]
        out.append(runner.keystroke(doc, before.count("\n"), len(before) - before.rfind("\n") - 1))
    runner.service.wait_idle(timeout=600)  # the next spot starts with the engine idle
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="catalog name or model path")
    parser.add_argument("--spots", type=int, default=10, help="places replayed (scenarios in turn)")
    parser.add_argument("--distance", type=int, default=20, help="lines between the first place and the spot")
    parser.add_argument("--rest-ms", type=float, default=1000, help="how long the cursor rests at the spot")
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument(
        "--near-suffix-tokens",
        type=int,
        default=None,
        help="suffix tokens of window prompts (default: the engine's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from engine.cpu import instruction_sets

    runners = {
        name: Replay(args.model, True, args.new_tokens, fim_order=order)
        for name, order in CONFIGURATIONS.items()
    }
    results: dict[tuple[str, str], list] = collections.defaultdict(list)
    try:
        places = spots(args.spots, args.seed)
        for index, (text, line) in enumerate(tqdm(places, desc="spots", unit="spot")):
            scenario = SCENARIOS[index % 2]
            for name, runner in runners.items():
                runner.service.model.backend.forget_prompt()  # a new file: nothing of it held
                keys = visit(
                    runner, text, line, scenario, args.distance, args.rest_ms / 1000, args.seed + index
                )
                results[(scenario, name)].append(keys)
                tqdm.write(
                    f"{scenario:13} {name:20} first keystroke {keys[0][0]:8.0f} ms, second {keys[1][0]:8.0f} ms"
                )
    finally:
        for runner in runners.values():
            runner.close()

    print(
        f"\nmodel {args.model}, {args.spots} spots, first place {args.distance} lines away, rest "
        f"{args.rest_ms:.0f} ms, {args.new_tokens} new tokens at most, window suffix "
        f"{next(iter(runners.values())).service.model.near_suffix_tokens} tokens, prompt budget "
        f"{next(iter(runners.values())).settings.max_prompt_tokens}; CPU: {instruction_sets()}\n"
    )
    print(
        "| configuration | 1st keystroke p50 / p95 ms | from cache | 2nd keystroke p50 / p95 ms | prompts run |"
    )
    print("|---|---:|---:|---:|---|")
    p50 = {}
    for name, runner in runners.items():
        runs = [r for scenario in SCENARIOS for r in results[(scenario, name)]]
        first = [r[0][0] for r in runs]
        second = [r[1][0] for r in runs]
        hits = sum(r[0][1] for r in runs)
        p50[name] = statistics.median(first)
        orders = ", ".join(f"{k} {v}" for k, v in collections.Counter(runner.orders).most_common())
        print(
            f"| {name} | {p50[name]:.0f} / {pct(first, 0.95):.0f} | {hits}/{len(runs)} "
            f"| {statistics.median(second):.0f} / {pct(second, 0.95):.0f} | {orders} |"
        )
    before, now = (p50[name] for name in CONFIGURATIONS)
    print(f"\nfirst keystroke, median: {before / max(now, 1e-3):.1f}x faster with windows")
    for name, runner in runners.items():
        print(f"{name}: warm-up at the first place p50 {statistics.median(runner.warm_ms) / 1000:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
