"""Switching between documents: the first suggestion after coming back, with and without saved
prompt states.

llama.cpp keeps one prompt's KV state; a completion in another document (or far from the cursor's
last place) overwrites it, and coming back used to evaluate the whole prompt again. The llama.cpp
backend now keeps a few states in memory (``SAVED_PROMPTS``) and begins from the one sharing the
longest head with a new prompt. This replays a user going back and forth between two documents
(a completion at one place in each, ``--rounds`` times) on two runtimes of the same model, one
keeping no saved states (the baseline), taking turns at every request; reported: the median
seconds of the requests after a switch, the prompt tokens evaluated, and the memory of the states.

    python benchmarks/document_switch.py --model qwen2.5-coder-0.5b-instruct --max-prompt-tokens 1024
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap as textwrap_module
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def place(source: str, fraction: float) -> tuple[str, str]:
    """(prefix, suffix) at the line start nearest ``fraction`` of ``source``."""
    cut = source.rfind("\n", 0, int(len(source) * fraction)) + 1
    return source[:cut], source[cut:]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="catalog name or GGUF file")
    parser.add_argument("--rounds", type=int, default=3, help="times the user goes to each document and back")
    parser.add_argument("--max-prompt-tokens", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: all cores)")
    args = parser.parse_args()

    from engine import load_model
    from engine.cpu import instruction_sets

    documents = [
        place((ROOT / "benchmarks" / "data" / "ledger.py").read_text(encoding="utf-8"), 0.6),
        place(Path(textwrap_module.__file__).read_text(encoding="utf-8"), 0.5),
    ]
    runtimes = {}
    for label, keep in (("one state (baseline)", 0), ("saved states (the product)", None)):
        model = load_model(
            args.model, backend="llamacpp", threads=args.threads, max_prompt_tokens=args.max_prompt_tokens
        )
        if keep is not None:
            model.backend.saved_prompt_limit = keep
        runtimes[label] = model
    seconds: dict[str, list[float]] = {label: [] for label in runtimes}
    evaluated: dict[str, int] = dict.fromkeys(runtimes, 0)
    order = [i % 2 for i in range(2 * args.rounds + 1)]
    for step, index in enumerate(tqdm(order, desc="requests", file=sys.stderr)):
        prefix, suffix = documents[index]
        for label, model in runtimes.items():
            backend = model.backend
            backend.set_pause_point(lambda cancel: None)  # records the evaluated prompt chunks
            began = time.perf_counter()
            model.complete(prefix, suffix, max_new_tokens=args.new_tokens, use_cache=False)
            elapsed = time.perf_counter() - began
            if step >= 2:  # both documents have been seen once: every request now comes back
                seconds[label].append(elapsed)
                evaluated[label] += sum(backend.prompt_chunks) + 1
    print(
        f"\nmodel {args.model} (llama.cpp), prompts budgeted to {args.max_prompt_tokens} tokens, "
        f"{args.new_tokens} new tokens; CPU: {instruction_sets()}\n"
    )
    print("| runtime | median s after a switch | prompt tokens evaluated | saved states | their MB |")
    print("|---|---:|---:|---:|---:|")
    for label, model in runtimes.items():
        backend = model.backend
        states = backend.saved_prompts
        print(
            f"| {label} | {statistics.median(seconds[label]):.2f} | {evaluated[label]} "
            f"| {len(states)} | {sum(s.size for s in states) / 2**20:.1f} |"
        )
        model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
