"""Speculative decoding with prompt-lookup drafts on llama.cpp: what a pass costs, what it buys.

Part 1, the price: one llama.cpp pass over n tokens (n = 1 is a plain decoding step) at a warm
position of a real prompt, median of ``--repeats`` passes. A draft of k tokens costs a pass over
k + 1 tokens, so drafting pays only where that pass costs much less than k + 1 steps.

Part 2, the effect: single- and multi-line completions at ``--holes`` line starts of a source file
(the prompt warm in the KV cache, as while typing), greedy, plain decoding against drafts of up to
k tokens (``engine.drafts.lookup_draft``), the configurations taking turns at every hole. Reported:
decoded tokens per second, passes, drafted and accepted tokens, and how often the text is
identical to plain decoding's (llama.cpp's batched and single-token kernels round differently, so
a near tie may go either way; plain decoding repeated is shown as the baseline for that).

    python benchmarks/speculative.py --model qwen2.5-coder-1.5b-instruct --source benchmarks/data/ledger.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def holes(source: str, count: int) -> list[tuple[str, str]]:
    """(prefix, suffix) at ``count`` line starts spread over ``source``, skipping blank lines."""
    starts = [i + 1 for i, ch in enumerate(source) if ch == "\n" and source[i + 1 : i + 2].strip()]
    step = max(1, len(starts) // (count + 1))
    chosen = starts[step : step * (count + 1) : step][:count]
    return [(source[:cut], source[cut:]) for cut in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="catalog name or GGUF file")
    parser.add_argument("--source", type=Path, default=ROOT / "benchmarks" / "data" / "ledger.py")
    parser.add_argument("--holes", type=int, default=12, help="line starts completed (part 2)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens decoded per hole at most")
    parser.add_argument("--drafts", default="2,4,6", help="draft lengths compared with plain decoding")
    parser.add_argument("--repeats", type=int, default=7, help="passes timed per size (part 1)")
    parser.add_argument(
        "--weights",
        choices=("auto", "repacked", "plain"),
        default="auto",
        help="llama.cpp's weight layout: repacked for the CPU's kernels, plain as the file holds them",
    )
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: all cores)")
    args = parser.parse_args()

    from engine import GenerationConfig, load_model
    from engine.backends.llamacpp import _extra_buffers
    from engine.cpu import cpu_flags
    from engine.prompts import build_fim_prompt

    with _extra_buffers({"auto": None, "repacked": True, "plain": False}[args.weights]):
        model = load_model(args.model, backend="llamacpp", threads=args.threads)
    backend = model.backend
    source = args.source.read_text(encoding="utf-8")
    draft_lengths = [int(k) for k in args.drafts.split(",")]
    simd = " ".join(sorted(f for f in cpu_flags() if f.startswith(("avx", "amx"))))
    print(f"model {args.model}, {args.weights} weights, {args.threads or 'all'} threads, CPU: {simd}\n")

    backend.warm_shapes()
    print(f"draft length the engine chooses on this CPU (warm_shapes): {backend.draft_tokens}\n")
    prefix, suffix = holes(source, 1)[0]
    ids = backend.encode(build_fim_prompt(model.fim, prefix, suffix, order="spm"))
    sizes = sorted({1, 2, 3, *(k + 1 for k in draft_lengths)})
    costs = backend.measure_passes(ids, sizes, args.repeats)
    print(
        f"## One pass over n tokens ({len(ids) - max(sizes)} tokens in the KV cache, median of {args.repeats})\n"
    )
    print("| n | ms | × one step |")
    print("|---:|---:|---:|")
    for n in sizes:
        print(f"| {n} | {costs[n] * 1000:.1f} | {costs[n] / costs[1]:.2f} |")

    configs = [("plain", 0), ("plain again", 0), *((f"drafts ≤{k}", k) for k in draft_lengths)]
    rows = {
        name: {"seconds": 0.0, "tokens": 0, "passes": 0, "drafted": 0, "accepted": 0, "same": 0}
        for name, _ in configs
    }
    config = GenerationConfig(max_new_tokens=args.new_tokens, heal=False)
    warm = GenerationConfig(max_new_tokens=1, heal=False)
    for prefix, suffix in tqdm(holes(source, args.holes), desc="holes", file=sys.stderr):
        ids = backend.encode(build_fim_prompt(model.fim, prefix, suffix, order="spm"))
        reference = None
        for name, k in configs:
            backend.draft_tokens = k
            list(backend.generate_ids(ids, warm))  # the prompt warm, as while typing
            before = (backend.drafts.passes, backend.drafts.drafted, backend.drafts.accepted)
            began = time.perf_counter()
            out = list(backend.generate_ids(ids, config))
            row = rows[name]
            row["seconds"] += time.perf_counter() - began
            row["tokens"] += len(out)
            row["passes"] += backend.drafts.passes - before[0] + 1 if k else len(out)
            row["drafted"] += backend.drafts.drafted - before[1]
            row["accepted"] += backend.drafts.accepted - before[2]
            reference = out if reference is None else reference
            row["same"] += out == reference
    count = len(holes(source, args.holes))
    print(
        f"\n## Decoding at {count} line starts of {args.source.name} (≤{args.new_tokens} tokens, prompt warm)\n"
    )
    print(
        "| configuration | tokens/s | vs plain | tokens per pass | accepted / drafted | same text as plain |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    plain_rate = rows["plain"]["tokens"] / max(rows["plain"]["seconds"], 1e-9)
    for name, _ in configs:
        row = rows[name]
        rate = row["tokens"] / max(row["seconds"], 1e-9)
        acceptance = f"{row['accepted']}/{row['drafted']}" if row["drafted"] else "–"
        print(
            f"| {name} | {rate:.1f} | {rate / plain_rate:.2f}× | {row['tokens'] / max(row['passes'], 1):.2f} "
            f"| {acceptance} | {row['same']}/{count} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
