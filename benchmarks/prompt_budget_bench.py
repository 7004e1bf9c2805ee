"""Cost of fitting a completion prompt into its token budget, per request.

Every keystroke that reaches the model first fits the text around the cursor into the prompt
budget, so this time adds to every completion's latency. Compared in one run, on the standard
library's ``textwrap.py`` (cursor in the middle) and on a 40x concatenation of it (~20k lines):

* baseline "per-line": whole lines outward from the cursor, each line counted on its own (one
  tokenizer call per line kept);
* baseline "encode-all": encode the whole prefix and suffix once and keep the last/first token ids
  (cuts inside lines; shown for scale);
* ``engine.budget.fit_prompt`` given only a counter (``fit_prompt``: lines counted in blocks,
  exact final count; the path for backends without a tokenizer);
* ``engine.budget.fit_prompt`` given the tokenizer (``fit+tok``: each part encoded about once in
  a window sized from the budget, cuts priced from token offsets, exact final count).

Each with the ``transformers`` tokenizer call and with the raw ``tokenizers`` encoder (``fit+tok``
is handed the corresponding tokenizer object; its "cached" typing column lets it remember
encodings between keystrokes, "uncached" forgets them before each). Times are medians of
wall-clock and of process CPU time (the CPU column is less sensitive to a busy machine).
Tokenizer: the embedded model's when present, else the test tokenizer trained on the spot.

    .venv/bin/python benchmarks/prompt_budget_bench.py [--budget 1536] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from engine.budget import cached_counter, fit_prompt, forget_encodings  # noqa: E402

Count = Callable[[str], int]


def per_line_fit(count: Count, prefix: str, suffix: str, budget: int) -> tuple[str, str]:
    """Baseline: whole lines outward from the cursor, each counted alone (prefix 3/4, suffix 1/4)."""
    cut = prefix.rfind("\n") + 1
    head, above = prefix[cut:], prefix[:cut].splitlines(keepends=True)
    cut = suffix.find("\n") + 1 or len(suffix)
    tail, below = suffix[:cut], suffix[cut:].splitlines(keepends=True)
    room = budget - count(head) - count(tail)
    suffix_room = room // 4
    kept_below, used = [], 0
    for line in below:
        cost = count(line)
        if used + cost > suffix_room:
            break
        kept_below.append(line)
        used += cost
    room -= used
    kept_above: list[str] = []
    used = 0
    for line in reversed(above):
        cost = count(line)
        if used + cost > room:
            break
        kept_above.append(line)
        used += cost
    return "".join(reversed(kept_above)) + head, tail + "".join(kept_below)


def encode_all_fit(
    encode: Callable[[str], list[int]], prefix: str, suffix: str, budget: int
) -> tuple[list, list]:
    """Baseline: encode everything once, keep the last 3/4 budget of prefix ids, first 1/4 of suffix ids."""
    suffix_ids = encode(suffix)[: budget // 4]
    prefix_ids = encode(prefix)[-(budget - len(suffix_ids)) :]
    return prefix_ids, suffix_ids


def _load_tokenizer():
    from transformers import AutoTokenizer

    bundle = REPO / "models" / "stackcoder-mini"
    if (bundle / "stackcoder.json").exists():
        import json

        manifest = json.loads((bundle / "stackcoder.json").read_text())
        return AutoTokenizer.from_pretrained(bundle / manifest.get("hf", "hf")), "stackcoder-mini"
    from helpers.tiny_models import ensure_tiny_model

    return AutoTokenizer.from_pretrained(ensure_tiny_model("gpt_bigcode")), "test tokenizer (vocab 2048)"


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and process CPU milliseconds of ``fn()``."""
    fn()  # warm up
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def _rows(
    count: Count,
    encode: Callable[[str], list[int]],
    tokenizer: object,
    prefix: str,
    suffix: str,
    budget: int,
    repeat: int,
) -> list[tuple[str, tuple[float, float], str, int]]:
    """(method, median ms (wall, CPU), tokenizer calls, tokens kept) for each method on one document."""
    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return count(text)

    def per_line() -> tuple[str, str]:
        return per_line_fit(counting, prefix, suffix, budget)

    def budgeted() -> tuple[str, str]:
        fitted = fit_prompt(counting, prefix, suffix, max_prompt_tokens=budget)
        return fitted.prefix, fitted.suffix

    def with_tokenizer() -> tuple[str, str]:
        forget_encodings()  # a cold request, like the others (which remember nothing)
        fitted = fit_prompt(counting, prefix, suffix, max_prompt_tokens=budget, tokenizer=tokenizer)
        return fitted.prefix, fitted.suffix

    rows = []
    for method, run in (("per-line", per_line), ("fit_prompt", budgeted), ("fit+tok", with_tokenizer)):
        ms = _time(run, repeat)
        calls = 0
        kept = run()
        made = str(calls) if method != "fit+tok" else "-"
        rows.append((method, ms, made, count(kept[0]) + count(kept[1])))
    ms = _time(lambda: encode_all_fit(encode, prefix, suffix, budget), repeat)
    ids = encode_all_fit(encode, prefix, suffix, budget)
    rows.append(("encode-all", ms, "2", len(ids[0]) + len(ids[1])))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=1536, help="prompt token budget (default: 1536)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per cell (median reported)")
    args = parser.parse_args()

    tokenizer, tokenizer_name = _load_tokenizer()
    raw = tokenizer.backend_tokenizer
    counters: dict[str, Count] = {
        "transformers": lambda t: len(tokenizer(t, add_special_tokens=False)["input_ids"]),
        "tokenizers": lambda t: len(raw.encode(t, add_special_tokens=False).ids),
    }
    encoders = {
        "transformers": lambda t: tokenizer(t, add_special_tokens=False)["input_ids"],
        "tokenizers": lambda t: raw.encode(t, add_special_tokens=False).ids,
    }
    tokenizer_objects = {"transformers": tokenizer, "tokenizers": raw}
    source = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text(encoding="utf-8")
    documents = {"textwrap.py": source, "textwrap.py x40": source * 40}

    print(f"tokenizer: {tokenizer_name}; budget {args.budget} tokens; median of {args.repeat} runs")
    header = (
        f"{'document':<17} {'counter':<13} {'method':<11} {'ms/request':>10} {'cpu ms':>7} "
        f"{'calls':>6} {'tokens':>7}"
    )
    print(header)
    print("-" * len(header))
    for doc_name, text in documents.items():
        middle = text.rfind("\n", 0, len(text) // 2) + 1 + 8
        for counter_name, count in counters.items():
            for method, (ms, cpu), made, tokens in _rows(
                count,
                encoders[counter_name],
                tokenizer_objects[counter_name],
                text[:middle],
                text[middle:],
                args.budget,
                args.repeat,
            ):
                print(
                    f"{doc_name:<17} {counter_name:<13} {method:<11} {ms:>10.2f} {cpu:>7.2f} "
                    f"{made:>6} {tokens:>7}"
                )

    # Typing: one fit per keystroke while 40 characters are typed on one line; with a cached
    # counter, the unchanged lines around the cursor are not counted again.
    text = source * 40
    middle = text.rfind("\n", 0, len(text) // 2) + 1
    typed = "result = self._split_chunks(text) + [x"
    print()
    print(f"typing {len(typed)} characters in the middle of textwrap.py x40: ms per keystroke (median)")
    header = f"{'counter':<13} {'method':<11} {'uncached':>9} {'cached':>9} {'calls/keystroke (cached)':>25}"
    print(header)
    print("-" * len(header))
    for counter_name, count in counters.items():
        for method in ("per-line", "fit_prompt", "fit+tok"):
            cells = []
            for cached in (False, True):
                calls = 0

                def counting(t: str, count: Count = count) -> int:
                    nonlocal calls
                    calls += 1
                    return count(t)

                counter = cached_counter(counting) if cached else counting
                samples = []
                for i in range(len(typed) + 1):
                    prefix, suffix = text[:middle] + typed[:i], text[middle:]
                    start = time.perf_counter()
                    if method == "per-line":
                        per_line_fit(counter, prefix, suffix, args.budget)
                    elif method == "fit_prompt":
                        fit_prompt(counter, prefix, suffix, max_prompt_tokens=args.budget)
                    else:
                        if not cached:
                            forget_encodings()
                        fit_prompt(
                            counter,
                            prefix,
                            suffix,
                            max_prompt_tokens=args.budget,
                            tokenizer=tokenizer_objects[counter_name],
                        )
                    samples.append((time.perf_counter() - start) * 1000)
                cells.append((statistics.median(samples[1:]), calls / len(samples)))
            (plain, _), (fast, fast_calls) = cells
            shown = "-" if method == "fit+tok" else f"{fast_calls:.1f}"  # it calls the tokenizer itself
            print(f"{counter_name:<13} {method:<11} {plain:>9.2f} {fast:>9.2f} {shown:>25}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
