"""Completion latency of the embedded model per backend, transformers float32 as the baseline, in one run.

The issue's target: a 1k-token prompt and 24 new tokens, p50 at most 50 ms on 2 cores. Every
completion goes through ``CodeModel.complete`` (prompt budgeting, token healing,
post-processing; the completion cache off) with the same measurements as the model card's
evaluation (``training.evaluate``):

* **cold**: a never-seen ~1k-token prompt at a random line start of a held-out file;
* **typing**: a line deleted and typed anew, a completion after each character (the engine may
  keep the prompt state of the lines above); its first keystroke reported apart.

Backends: transformers float32 (the baseline), ``auto`` (the product's default: CTranslate2,
with the torch backend for cold prompts), CTranslate2 int8 at its default threads (one for a
model this small) and at two, and the torch backend alone (bfloat16 prompts where the CPU has
bf16 matrix instructions; and with float32 prompts). ``agree`` is the share of cold completions whose
text equals the baseline's (greedy decoding: what int8 or bfloat16 arithmetic changes).
Held-out files: the held-out repositories of the model card when installed (click, requests,
rich), else the standard library.

    .venv/bin/python benchmarks/cold_prompt.py
    .venv/bin/python benchmarks/cold_prompt.py --runs 60 --backends ct2 torch
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import load_model  # noqa: E402
from training.evaluate import LATENCY_NEW_TOKENS, completion_latency, typing_latency  # noqa: E402

MODEL = REPO / "models" / "stackcoder-mini"
HELD_OUT_PACKAGES = ("click", "requests", "rich")
# name -> load_model keyword arguments
BACKENDS: dict[str, dict] = {
    "transformers": {"backend": "transformers"},
    "auto": {"backend": "auto"},
    "ct2": {"backend": "ct2"},
    "ct2-2threads": {"backend": "ct2", "threads": 2},
    "torch": {"backend": "torch"},
    "torch-fp32": {"backend": "torch", "quantization": "float32"},
}


def held_out_files() -> list[tuple[str, str]]:
    """(name, text) of the held-out packages' modules, or the standard library's."""
    folders = []
    for package in HELD_OUT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            folders.append(Path(spec.origin).parent)
    if not folders:
        folders = [Path(sysconfig.get_paths()["stdlib"])]
    files = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if len(text) > 5000:
                files.append((str(path.relative_to(folder.parent)), text))
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(MODEL), help="model folder (default: the embedded model)")
    parser.add_argument("--runs", type=int, default=40, help="cold completions per backend (default: 40)")
    parser.add_argument("--lines", type=int, default=8, help="lines retyped per backend (default: 8)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f}; timings are skewed by other work", file=sys.stderr)
    files = held_out_files()
    rows, reference = [], None
    for name in ["transformers", *[b for b in args.backends if b != "transformers"]]:
        model = load_model(args.model, **BACKENDS[name])
        cold = completion_latency(model, files, runs=args.runs, seed=args.seed, keep_texts=True)
        typing = typing_latency(model, files, lines=args.lines, seed=args.seed)
        texts = cold.pop("texts")
        reference = reference or texts
        agree = sum(a == b for a, b in zip(texts, reference, strict=True)) / len(texts)
        threads = getattr(model.backend, "threads", "?")
        rows.append((name, threads, cold, typing, agree))
        print(f"{name}: cold p50 {cold['p50_ms']} ms, typing p50 {typing['p50_ms']} ms", file=sys.stderr)
        model.close()
        del model
        gc.collect()
    base = rows[0][2]["p50_ms"]
    print(
        f"\nembedded model, {rows[0][2]['prompt_tokens_median']}-token cold prompts, "
        f"≤ {LATENCY_NEW_TOKENS} new tokens, {args.runs} cursors; typing: {args.lines} lines\n"
    )
    print(
        "| backend | threads | cold p50 / p95 ms | vs transformers | typing p50 / p95 ms "
        "| line's 1st keystroke p50 ms | agree |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, threads, cold, typing, agree in rows:
        print(
            f"| {name} | {threads} | {cold['p50_ms']:.1f} / {cold['p95_ms']:.1f} | {base / cold['p50_ms']:.2f}x "
            f"| {typing['p50_ms']:.1f} / {typing['p95_ms']:.1f} | {typing['first_keystroke_p50_ms']:.1f} "
            f"| {agree:.0%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
