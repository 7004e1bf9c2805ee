"""Typing-session benchmark: a completion after every keystroke, naive vs the engine's optimisations.

The same on every machine: the standard library's textwrap.py with the body of
``TextWrapper._wrap_chunks`` deleted; the first ``--keystrokes`` (400) characters of that body are
typed back one at a time and a completion is requested after each keystroke. Reported per
configuration: median and p95 latency per request, how many requests actually ran the model, and
what each technique costs in memory.

Configurations (each adds one technique to the previous one):
  naive        every request runs the whole prompt through the model
  +static      CTranslate2 ``static_prompt`` reuse: SPM order puts the suffix first, so typing
               only appends to the prompt and the state of everything above the cursor's line is
               cached across keystrokes
  +cache       typed-through completion cache: typing what the suggestion shows is answered
               without the model
  +prefetch    after each answer, the completion at the end of the suggestion is computed in the
               idle time before the next keystroke (its time is reported, not counted as latency)

The model defaults to a random-weight tiny_starcoder_py shape (int8); pass ``--model`` for a trained
one (random weights never predict the typed text, so the cache and prefetch show their cost but
no hits there). llama.cpp is compared when llama-cpp-python is installed and ``--gguf`` is given.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import textwrap as textwrap_module
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def session_texts() -> tuple[str, str, str]:
    """(text before the deleted body, the deleted body, text after it) of textwrap.py."""
    source = Path(textwrap_module.__file__).read_text()
    match = re.search(r"^    def _wrap_chunks\(self, chunks\):\n", source, re.MULTILINE)
    if match is None:
        raise SystemExit("textwrap.py has no TextWrapper._wrap_chunks; use another Python version")
    start = match.end()
    end_match = re.compile(r"^    def |^\S", re.MULTILINE).search(source, start)
    end = end_match.start() if end_match else len(source)
    body = source[start:end]
    stripped = body.rstrip("\n")
    return source[:start], stripped, "\n" + source[start + len(stripped) :]


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_session(
    model, before: str, typed: str, after: str, *, use_cache: bool, prefetch: bool, new_tokens: int
):
    latencies, model_runs, prefetch_runs, prefetch_times, hits = [], 0, 0, [], 0
    model.cache.clear()
    rss_start = rss_bytes()
    for i in range(1, len(typed) + 1):
        prefix = before + typed[:i]
        start = time.perf_counter()
        completion = model.complete(prefix, after, max_new_tokens=new_tokens, use_cache=use_cache)
        latencies.append((time.perf_counter() - start) * 1000)
        if completion.cached:
            hits += 1
        else:
            model_runs += 1
        if prefetch and completion.text and model.cache.get(prefix + completion.text, after) is None:
            t0 = time.perf_counter()
            model.complete(prefix + completion.text, after, max_new_tokens=new_tokens, use_cache=True)
            prefetch_times.append((time.perf_counter() - t0) * 1000)
            prefetch_runs += 1
    cache_bytes = (
        sum(len(p) + len(s) + len(t) for (p, s), t in model.cache._entries.items()) if use_cache else 0
    )
    return {
        "median": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
        "mean": statistics.fmean(latencies),
        "model_runs": model_runs,
        "cache_hits": hits,
        "prefetch_runs": prefetch_runs,
        "prefetch_ms": statistics.median(prefetch_times) if prefetch_times else 0.0,
        "rss_delta": rss_bytes() - rss_start,
        "cache_bytes": cache_bytes,
    }


def load(model_path: str | None, threads: int, static: bool, max_prompt_tokens: int):
    from engine.backends.ct2 import CT2Backend
    from engine.convert import ct2_folder_for
    from engine.loading import inspect_model, load_tokenizer
    from engine.model import CodeModel
    from engine.prompts import detect_fim_format

    if model_path is None:
        from engine_bench import model_dir

        model_path = str(model_dir("tiny_starcoder_py"))
    source = inspect_model(model_path)
    folder = source.root if source.kind == "ct2" else ct2_folder_for(source, "int8")
    tokenizer = load_tokenizer(source.tokenizer_dir)
    backend = CT2Backend(folder, tokenizer, source.context_window, threads=threads, static_prompt=static)
    fim = detect_fim_format(tokenizer.get_vocab().keys())
    return CodeModel(
        backend,
        name=source.name,
        family=source.family,
        fim=fim,
        max_prompt_tokens=max_prompt_tokens,
        backend_name="ct2",
    )


CONFIGS = (
    ("naive", {"static": False, "use_cache": False, "prefetch": False}),
    ("+static", {"static": True, "use_cache": False, "prefetch": False}),
    ("+cache", {"static": True, "use_cache": True, "prefetch": False}),
    ("+prefetch", {"static": True, "use_cache": True, "prefetch": True}),
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model path (default: random tiny_starcoder_py shape)")
    parser.add_argument("--keystrokes", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--max-prompt-tokens", type=int, default=512)
    parser.add_argument("--only", default=None, help="comma-separated configurations to run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    before, body, after = session_texts()
    typed = body[: args.keystrokes]
    load_start = os.getloadavg()
    results = []
    wanted = set(args.only.split(",")) if args.only else None
    for name, options in CONFIGS:
        if wanted and name not in wanted:
            continue
        model = load(args.model, args.threads, options["static"], args.max_prompt_tokens)
        model.complete(before, after, max_new_tokens=4, use_cache=False)  # warm-up
        stats = run_session(
            model,
            before,
            typed,
            after,
            use_cache=options["use_cache"],
            prefetch=options["prefetch"],
            new_tokens=args.new_tokens,
        )
        stats["static_hits"] = model.backend.static_prompt_hits
        stats["name"] = name
        results.append(stats)
        print(f"  {name:10s} median {stats['median']:7.1f} ms  p95 {stats['p95']:7.1f} ms", file=sys.stderr)
        model.close()

    print(
        f"\n{len(typed)} keystrokes, a completion of up to {args.new_tokens} tokens after each, prompts budgeted to "
        f"{args.max_prompt_tokens} tokens, {args.threads} threads, CTranslate2 int8; load average at start "
        f"{load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f}\n"
    )
    base = results[0]["median"] if results else 1.0
    print(
        f"| {'configuration':13s} | {'median ms':>9s} | {'p95 ms':>8s} | {'vs naive':>8s} | {'model runs':>10s} "
        f"| {'cache hits':>10s} | {'head reuses':>11s} | {'prefetch runs (median ms)':>25s} | {'RSS growth MB':>13s} "
        f"| {'cache KB':>8s} |"
    )
    print("|" + "|".join(["---------------"] + ["-----------"] * 9) + "|")
    for r in results:
        prefetch = f"{r['prefetch_runs']} ({r['prefetch_ms']:.0f})"
        print(
            f"| {r['name']:13s} | {r['median']:9.1f} | {r['p95']:8.1f} | {base / r['median']:7.2f}x | {r['model_runs']:10d} "
            f"| {r['cache_hits']:10d} | {r['static_hits']:11d} | {prefetch:>25s} | {r['rss_delta'] / 1e6:13.1f} "
            f"| {r['cache_bytes'] / 1e3:8.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
