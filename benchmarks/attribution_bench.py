"""Provenance index benchmark: build speed, size, memory, query latency, and detection quality.

Indexes the Python standard library (or a sub-set) and measures:
* build time, files/s, size on disk, resident memory after opening and after the queries;
* opening the index (memory-mapped LSH arrays) against the baseline of rebuilding a datasketch
  MinHashLSH from the stored signatures;
* query latency p50/p95 for 30-line snippets;
* precision and recall per detector and for the verdict on a labelled set: verbatim, partial,
  renamed and reformatted copies of indexed code vs functions from installed packages that are
  not in the index; the baseline row "near (raw shingles only)" shows what the
  identifier-normalised stream adds.

With ``--baseline DIR`` (a folder holding another version of the ``attribution`` package, e.g.
``git archive HEAD~1 attribution | tar -x -C DIR``) it only compares builds: CPU time of all
processes and wall-clock files/s, builds of the same corpus (one process, or ``--workers N``),
each in a fresh process, alternating between DIR's package and this checkout's for ``--rounds``
rounds. With ``--instructions`` as well, each build (and a run of the
imports alone, subtracted) is counted in instructions under valgrind's cachegrind instead: slow,
but not moved by other processes on a loaded machine.

Usage: python benchmarks/attribution_bench.py [--files N] [--samples N] [--workers N] [--keep DIR]
       python benchmarks/attribution_bench.py --baseline DIR [--files N] [--rounds N] [--workers N] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution import BuildConfig, Index, build_index  # noqa: E402
from attribution.evaluation import TRANSFORMS, Tally, fires, is_hit, make_samples, outside_samples  # noqa: E402
from attribution.sources import iter_source_files  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SITE = Path(sysconfig.get_paths()["purelib"])
# Installed packages whose code is not in the standard library: the negatives.
OUTSIDE_PACKAGES = ("datasketch", "bm25s", "click", "httpx", "pygls", "attr", "starlette", "rich")


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stdlib_corpus(root: Path, limit: int | None) -> Path:
    """A folder holding the stdlib as one repository (symlinked files, PSF license)."""
    repo = root / "cpython"
    repo.mkdir(parents=True)
    shutil.copy(STDLIB / "LICENSE.txt", repo / "LICENSE")
    files = sorted(
        p for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts and "__pycache__" not in p.parts
    )
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    for p in files:
        target = repo / "Lib" / p.relative_to(STDLIB)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    return root


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the build's worker processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=0, help="index this many stdlib files (default: all)")
    parser.add_argument("--samples", type=int, default=100, help="copies per transformation (and outside)")
    parser.add_argument("--workers", type=int, default=0, help="build processes (default: CPU cores)")
    parser.add_argument("--keep", type=Path, help="keep the index in this folder")
    parser.add_argument("--baseline", type=Path, help="compare build CPU time with the package in DIR")
    parser.add_argument("--rounds", type=int, default=5, help="alternating builds per version (--baseline)")
    parser.add_argument(
        "--instructions", action="store_true", help="count build instructions with cachegrind (--baseline)"
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}  cores: {os.cpu_count()}")
    if args.baseline:
        if args.instructions:
            return _compare_instructions(args.baseline, args.files or None)
        return _compare_builds(args.baseline, args.files or None, args.rounds, args.workers or 1)
    with tempfile.TemporaryDirectory(prefix="attr-bench-") as tmp:
        corpus = _stdlib_corpus(Path(tmp) / "corpus", args.files or None)
        out = args.keep or Path(tmp) / "index"
        if args.keep:
            shutil.rmtree(out, ignore_errors=True)
        cpu0 = _cpu_seconds()
        config = BuildConfig(workers=args.workers, extensions=[".py"], progress=False)
        result = build_index([corpus], out, config)
        build_cpu = _cpu_seconds() - cpu0
        size = _du(out)
        rss0 = _rss_mb()
        t = time.perf_counter()
        index = Index.open(out)
        open_ms = (time.perf_counter() - t) * 1000
        rss_open = _rss_mb()
        lsh_rebuild_s = _datasketch_rebuild(index)

        corpus_files = list(iter_source_files([corpus], extensions=[".py"]))
        positives = make_samples(corpus_files, args.samples, seed=7)
        outside_files = [
            f
            for pkg in OUTSIDE_PACKAGES
            if (SITE / pkg).is_dir()
            for f in iter_source_files([SITE / pkg], extensions=[".py"])
        ]
        negatives = outside_samples(outside_files, args.samples * 2, seed=3)
        latencies = []
        detectors = {
            "exact": ("exact",),
            "near": ("near",),
            "bm25": ("bm25",),
            "verdict=copied": ("exact", "near", "bm25"),
        }
        tallies = {name: Tally() for name in detectors}
        raw_only = Tally()
        for sample in positives + negatives:
            t = time.perf_counter()
            report = index.query(sample.text)
            latencies.append((time.perf_counter() - t) * 1000)
            for name, kinds in detectors.items():
                alone = report if name.startswith("verdict") else index.query(sample.text, detectors=kinds)
                fired = alone.verdict == "copied" if name.startswith("verdict") else fires(alone, kinds)
                correct = sample.repo is not None and is_hit(sample, alone, kinds)
                tallies[name].add(sample.transform, fired, correct)
            raw_fired, raw_correct = _raw_only(index, sample)
            raw_only.add(sample.transform, raw_fired, raw_correct)
        snippets = [s for s in positives if s.transform == "verbatim"]
        snippet_ms, snippet_cpu_ms = [], []
        for s in snippets:
            t, c = time.perf_counter(), time.process_time()
            index.query(s.text)
            snippet_ms.append((time.perf_counter() - t) * 1000)
            snippet_cpu_ms.append((time.process_time() - c) * 1000)
        rss_end = _rss_mb()

    p = np.percentile
    print()
    print("| build | value |")
    print("|---|---|")
    print(f"| files indexed | {result.files} ({result.lines} lines, {result.chunks} chunks) |")
    print(f"| build time | {result.seconds:.1f} s |")
    rate = f"{result.files_per_second:.0f} files/s, {result.lines / result.seconds:.0f} lines/s"
    print(f"| build rate (wall clock) | {rate} |")
    per_cpu = result.files / build_cpu
    print(f"| build CPU time, all processes | {build_cpu:.1f} s: {per_cpu:.0f} files per CPU-second |")
    print(
        f"| size on disk | {size / 1e6:.1f} MB ({size / max(1, result.lines):.0f} bytes per indexed line) |"
    )
    print(f"| open (mmap arrays) | {open_ms:.1f} ms |")
    print(f"| baseline: rebuild datasketch MinHashLSH from signatures | {lsh_rebuild_s * 1000:.0f} ms |")
    print(
        f"| RSS before open / after open / after queries | {rss0:.0f} / {rss_open:.0f} / {rss_end:.0f} MB |"
    )
    print(
        f"| query wall p50 / p95, 30-line snippets (n={len(snippet_ms)}) | {p(snippet_ms, 50):.1f} / {p(snippet_ms, 95):.1f} ms |"
    )
    cpu50, cpu95 = p(snippet_cpu_ms, 50), p(snippet_cpu_ms, 95)
    print(f"| query CPU time p50 / p95, 30-line snippets | {cpu50:.1f} / {cpu95:.1f} ms |")
    print(
        f"| query wall p50 / p95, all labelled queries (n={len(latencies)}) | {p(latencies, 50):.1f} / {p(latencies, 95):.1f} ms |"
    )
    print()
    header = " | ".join(f"recall {t}" for t in TRANSFORMS)
    print(f"| detector | {header} | precision | flags on outside code |")
    print("|---" * (len(TRANSFORMS) + 3) + "|")
    rows = list(tallies.items()) + [("baseline: near (raw shingles only)", raw_only)]
    for name, tally in rows:
        recalls = " | ".join(f"{tally.recall(t):.3f}" for t in TRANSFORMS)
        print(
            f"| {name} | {recalls} | {tally.precision:.3f} | {tally.outside_flags} / {tally.totals.get('outside', 0)} |"
        )
    print(
        f"\nsamples: {len(positives)} copies ({args.samples} per transformation), {len(negatives)} outside functions"
    )
    print(f"load average after: {os.getloadavg()}")
    return 0


# One build in a fresh process (imports done before the clock starts): prints CPU seconds and files.
_BUILD_ONCE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from attribution import BuildConfig, build_index
import attribution.segment, bm25s
if sys.argv[2:]:
    import resource
    workers = int(sys.argv[4]) if sys.argv[4:] else 1
    start, wall = time.process_time(), time.perf_counter()
    config = BuildConfig(workers=workers, extensions=[".py"], progress=False)
    result = build_index([sys.argv[2]], sys.argv[3], config)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - start + children.ru_utime + children.ru_stime
    print(cpu, result.files, time.perf_counter() - wall)
"""


def _compare_builds(baseline: Path, limit: int | None, rounds: int, workers: int = 1) -> int:
    """Build CPU time (all processes) and wall-clock rate of the package in ``baseline`` against
    this checkout's, alternating, each build in a fresh process with ``workers`` workers (after
    one untimed build of each, so compiling the kernels is not counted)."""
    versions = {"baseline": baseline.resolve(), "current": Path(__file__).resolve().parents[1]}
    times: dict[str, list[float]] = {name: [] for name in versions}
    walls: dict[str, list[float]] = {name: [] for name in versions}
    with tempfile.TemporaryDirectory(prefix="attr-bench-") as tmp:
        corpus = _stdlib_corpus(Path(tmp) / "corpus", limit)

        def build(root: Path, out: Path) -> list[str]:
            done = subprocess.run(
                [sys.executable, "-c", _BUILD_ONCE, str(root), str(corpus), str(out), str(workers)],
                capture_output=True,
                text=True,
                check=True,
            )
            shutil.rmtree(out)
            return done.stdout.split()

        for name, root in versions.items():  # untimed: fills each version's compiled-kernel cache
            build(root, Path(tmp) / f"index-{name}-warm-up")
        for i in range(rounds):
            for name, root in versions.items():
                cpu, files, wall = build(root, Path(tmp) / f"index-{name}-{i}")
                times[name].append(float(cpu))
                walls[name].append(float(wall))
    print(
        f"\n| version | build CPU s per round ({files} files, {workers} worker(s)) | median CPU s "
        "| files per CPU-second | wall files/s per round | median files/s |"
    )
    print("|---|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        rounds_text = " / ".join(f"{v:.2f}" for v in values)
        rates = [int(files) / w for w in walls[name]]
        rates_text = " / ".join(f"{r:.0f}" for r in rates)
        print(
            f"| {name} | {rounds_text} | {median:.2f} | {int(files) / median:.0f} | {rates_text} "
            f"| {statistics.median(rates):.0f} |"
        )
    print(f"load average after: {os.getloadavg()}")
    return 0


def _instructions(args: list[str]) -> tuple[int, str]:
    """Instructions executed by ``python -c _BUILD_ONCE ARGS`` under cachegrind, and its output."""
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        + [sys.executable, "-c", _BUILD_ONCE, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stderr.splitlines() if "I   refs:" in x or "I refs:" in x)
    return int(line.split(":")[1].replace(",", "")), done.stdout


def _compare_instructions(baseline: Path, limit: int | None) -> int:
    """Build instructions (imports subtracted) of the package in ``baseline`` and of this checkout's."""
    versions = {"baseline": baseline.resolve(), "current": Path(__file__).resolve().parents[1]}
    counts = {}
    with tempfile.TemporaryDirectory(prefix="attr-bench-") as tmp:
        corpus = _stdlib_corpus(Path(tmp) / "corpus", limit)
        for name, root in versions.items():
            build, output = _instructions([str(root), str(corpus), str(Path(tmp) / f"index-{name}")])
            counts[name] = build - _instructions([str(root)])[0]
            files = int(output.split()[1])
    print(f"\n| version | build instructions ({files} files, one process, imports subtracted) | per file |")
    print("|---|---|---|")
    for name, count in counts.items():
        print(f"| {name} | {count / 1e9:.3f} G | {count / files / 1e6:.1f} M |")
    print(f"ratio baseline / current: {counts['baseline'] / counts['current']:.3f}")
    print(f"load average after: {os.getloadavg()}")
    return 0


def _raw_only(index: Index, sample) -> tuple[bool, bool]:
    """The near detector restricted to raw-token shingles (the baseline without normalisation)."""
    from attribution.fingerprint import fingerprint

    fp = fingerprint(sample.text, "query.py", index.fp_params, query=True)
    sets = fp.streams["raw"]
    minimum = index.seg_params.min_shingles["raw"]
    fired = correct = False
    for c in range(len(fp.chunk_starts)):
        if len(sets.of(c)) < minimum:
            continue
        local, _remote = index._finder.candidates("raw", sets.signatures[c], index.config.max_candidates)
        for seg_index, ids in local.items():
            segment = index.segments[seg_index]
            mine = segment.informative("raw", sets.of(c))
            for chunk_id in ids:
                theirs = segment.chunk_set("raw", int(chunk_id))
                shared = np.intersect1d(mine, theirs, assume_unique=True).size
                if shared / max(1, len(mine) + len(theirs) - shared) >= index.config.near_threshold:
                    fired = True
                    record = segment.file_record(int(segment.chunk_file[chunk_id]))
                    start, end = int(segment.chunk_start[chunk_id]), int(segment.chunk_end[chunk_id])
                    if (
                        (record.repo, record.path) == (sample.repo, sample.path)
                        and start <= sample.end_line
                        and sample.start_line <= end
                    ):
                        correct = True
    return fired, correct


def _datasketch_rebuild(index: Index) -> float:
    """Seconds to rebuild an in-memory datasketch MinHashLSH from the index's stored signatures."""
    from datasketch import LeanMinHash, MinHashLSH

    t = time.perf_counter()
    for stream in ("raw", "norm"):
        lsh = MinHashLSH(
            num_perm=index.fp_params.num_perm, params=(index.seg_params.bands, index.seg_params.rows)
        )
        for segment in index.segments:
            sizes = np.diff(np.asarray(segment.offsets[stream]))
            eligible = np.flatnonzero(sizes >= index.seg_params.min_shingles[stream])
            sigs = np.load(segment.folder / f"{stream}_signatures.npy", mmap_mode="r")
            with lsh.insertion_session() as session:
                for i in eligible:
                    session.insert(
                        f"{segment.name}:{i}",
                        LeanMinHash(seed=index.fp_params.seed, hashvalues=sigs[i], scheme="affine32"),
                        check_duplication=False,
                    )
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
