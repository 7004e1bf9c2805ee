"""HumanEval pass@1 of several models (a base and its adapter), same problems, same sampling, same run.

Each ``--model`` (catalog name, GGUF file, folder or adapter bundle) answers every problem in each
``--variant`` (``chat``: a request in the model's own chat template, as the chat panel asks;
``plain``: the function prompt continued as code), greedy by default; every program runs with the
problem's tests in the sandbox (``training.humaneval``). Prints one table (pass@1, problems solved,
seconds) and, per variant, the problems one model solves and another does not.

    .venv/bin/python benchmarks/humaneval_compare.py --model qwen2.5-coder-0.5b-instruct \\
        --model runs/qwen0.5b-sft/bundle --variant chat
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", required=True, help="model to evaluate (repeat)")
    parser.add_argument(
        "--variant",
        action="append",
        choices=("chat", "plain", "instruct", "starcoder"),
        help="prompt variant (repeat; default: chat)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N problems (default: all 164)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=384, help="tokens per answer (default: 384)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--json", metavar="FILE", help="write every sample's result here")
    args = parser.parse_args(argv)

    from engine import load_model
    from training.humaneval import HumanEvalConfig, run_humaneval
    from training.sandbox import Limits, Sandbox

    variants = args.variant or ["chat"]
    sandbox = Sandbox(Limits(cpu_seconds=10, wall_seconds=20))
    rows: list[tuple[str, str, int, int, float, float]] = []
    solved: dict[tuple[str, str], set[str]] = {}
    report_all: dict[str, dict] = {}
    for name in args.model:
        model = load_model(name)
        try:
            for variant in variants:
                config = HumanEvalConfig(
                    greedy=args.temperature == 0,
                    n=1,
                    temperature=args.temperature,
                    max_new_tokens=args.max_new_tokens,
                    prompt_variant=variant,
                    limit=args.limit,
                )
                started = time.perf_counter()
                report = run_humaneval(model, config, sandbox=sandbox)
                seconds = time.perf_counter() - started
                per = report["per_problem"]
                solved[(name, variant)] = {t for t, v in per.items() if v["correct"]}
                rows.append(
                    (
                        name,
                        variant,
                        len(solved[(name, variant)]),
                        len(per),
                        report["scores"]["pass@1"],
                        seconds,
                    )
                )
                report_all[f"{name} | {variant}"] = report
        finally:
            model.close()

    print(f"\n{'model':<44} {'variant':<8} {'solved':>9} {'pass@1':>8} {'s':>7}")
    for name, variant, count, total, score, seconds in rows:
        print(f"{name[-44:]:<44} {variant:<8} {count:>4}/{total:<4} {score:>8.3f} {seconds:>7.0f}")
    for variant in variants:
        for first in args.model:
            for other in args.model:
                only = sorted(
                    solved[(first, variant)] - solved[(other, variant)], key=lambda t: int(t.split("/")[1])
                )
                if first != other and only:
                    print(f"{variant}: solved by {first} only ({len(only)}): {', '.join(only)}")
    if args.json:
        Path(args.json).write_text(json.dumps(report_all, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
