"""Cost of sandboxing: per-program latency and pool throughput of each isolation mode.

Baseline: the same programs run by a bare ``python -I -S -B file`` subprocess (no limits, no
isolation). Programs: HumanEval canonical solutions with their tests (what the evaluation
harness and self-validation execute).

    python benchmarks/bench_sandbox.py [--programs 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.humaneval import build_program, load_problems  # noqa: E402
from training.sandbox import ISOLATIONS, Limits, Sandbox  # noqa: E402
from training.sandbox.interpreter import find_interpreter  # noqa: E402


def _baseline(programs: list[str], workers: int) -> tuple[list[float], float]:
    """Per-program latencies run one by one, and the throughput of a pool of ``workers``."""
    from concurrent.futures import ThreadPoolExecutor

    python = find_interpreter().executable
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, code in enumerate(programs):
            paths.append(Path(tmp) / f"p{i}.py")
            paths[-1].write_text(code)

        def one(path: Path) -> float:
            start = time.perf_counter()
            proc = subprocess.run([python, "-I", "-S", "-B", str(path)], capture_output=True, cwd=tmp)
            assert proc.returncode == 0, proc.stderr
            return time.perf_counter() - start

        times = [one(p) for p in paths]
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, paths))
        rate = len(paths) / (time.perf_counter() - start)
    return times, rate


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--programs", type=int, default=40, help="HumanEval programs to run (default: 40)")
    parser.add_argument(
        "--workers", type=int, default=2, help="pool size for the throughput column (default: 2)"
    )
    args = parser.parse_args()
    problems = load_problems(limit=args.programs)
    programs = [build_program(p, p["canonical_solution"]) for p in problems.values()]
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{len(programs)} programs, pool of {args.workers}")  # fmt: skip
    base, base_rate = _baseline(programs, args.workers)
    base_median = statistics.median(base)
    rows = [("bare subprocess (baseline)", base_median, 1.0, base_rate, len(programs))]
    for name in ISOLATIONS:
        if ISOLATIONS[name].available() is not None:
            continue
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sandbox = Sandbox(Limits(cpu_seconds=10, wall_seconds=30), isolation=name, workers=args.workers)
        serial = []
        passed = 0
        for code in programs:
            start = time.perf_counter()
            passed += sandbox.run(code).passed
            serial.append(time.perf_counter() - start)
        start = time.perf_counter()
        results = sandbox.run_many(programs)
        pool_rate = len(programs) / (time.perf_counter() - start)
        assert all(r.passed for r in results)
        median = statistics.median(serial)
        rows.append((f"sandbox {name}", median, median / base_median, pool_rate, passed))
    print(f"{'mode':<28}{'median ms/program':>19}{'x baseline':>12}{'pool programs/s':>17}{'passed':>8}")
    for name, median, ratio, rate, passed in rows:
        print(f"{name:<28}{median * 1000:>19.1f}{ratio:>12.2f}{rate:>17.1f}{passed:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
