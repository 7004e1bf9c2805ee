"""Repository scan speed against the index's own build rate, both measured in the same run.

Indexes part of the Python standard library (one repository, PSF-2.0), then scans a repository
of ``--scan-files`` Python files (half taken from the indexed files, half from installed packages
that are not in the index) with `attribution.scan.scan_repository`, once per ``--workers`` value.
Prints one table: files, seconds and files/s of the build and of each scan, and the scan's rate
as a share of the build's (same workers), plus the findings the scan reported.

Usage: python benchmarks/scan_bench.py [--files 1000] [--scan-files 1000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution import BuildConfig, build_index  # noqa: E402
from attribution.scan import ScanConfig, scan_repository  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SITE = Path(sysconfig.get_paths()["purelib"])


def _python_files(root: Path) -> list[Path]:
    """Python files below ``root`` (not those of packages installed inside it), under 1 MB."""
    return sorted(
        p
        for p in root.rglob("*.py")
        if "site-packages" not in p.relative_to(root).parts
        and "__pycache__" not in p.parts
        and p.stat().st_size < 1_000_000
    )


def _corpus(root: Path, limit: int) -> tuple[Path, list[Path]]:
    """The stdlib sub-set as one repository (its LICENSE, Lib/...), and the files it holds."""
    repo = root / "cpython"
    (repo / "Lib").mkdir(parents=True)
    shutil.copy(STDLIB / "LICENSE.txt", repo / "LICENSE")
    files = _python_files(STDLIB)
    files = files[:: max(1, len(files) // limit)][:limit]
    for p in files:
        target = repo / "Lib" / p.relative_to(STDLIB)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    return root, files


def _scanned(root: Path, indexed: list[Path], count: int) -> Path:
    """A repository of ``count`` files: half copies of indexed files, half other installed code."""
    repo = root / "project"
    repo.mkdir()
    (repo / "LICENSE").write_text(
        "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"
        "...\nThe above copyright notice and this permission notice shall be included in all\n"
    )
    copies = indexed[:: max(1, len(indexed) // (count // 2))][: count // 2]
    others = [p for p in _python_files(SITE) if p.stat().st_size > 200]
    others = others[:: max(1, len(others) // (count - len(copies)))][: count - len(copies)]
    for i, p in enumerate(copies + others):
        target = repo / ("vendored" if i < len(copies) else "src") / f"{i:05d}_{p.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    return repo


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1000, help="stdlib files indexed (default 1000)")
    parser.add_argument("--scan-files", type=int, default=1000, help="files of the scanned repository")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    args = parser.parse_args()
    workers = sorted(set(args.workers))

    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        root = Path(tmp)
        corpus, indexed = _corpus(root / "corpus", args.files)
        repo = _scanned(root, indexed, args.scan_files)
        rows = []
        for w in workers:
            out = root / f"index-{w}"
            built = build_index([corpus], out, BuildConfig(workers=w, progress=False))
            rows.append((f"index build ({w} worker{'s' if w > 1 else ''})", built.files, built.seconds, None))
            scan = scan_repository(repo, out, ScanConfig(workers=w, progress=False))
            share = scan.files_per_second / built.files_per_second if built.files_per_second else 0.0
            totals = scan.totals()
            label = f"index scan ({w} worker{'s' if w > 1 else ''})"
            rows.append((label, scan.files, scan.seconds, (share, totals["files_with_findings"])))

    print(f"CPU: {_cpu_model()} ({os.cpu_count()} logical cores); Python {platform.python_version()}")
    print(f"index: {args.files} stdlib files; scanned repository: {args.scan_files} files, half copied\n")
    print(
        f"| {'stage':<26} | {'files':>6} | {'seconds':>8} | {'files/s':>8} | {'vs build':>8} | {'files flagged':>13} |"
    )
    print(f"|{'-' * 28}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 15}|")
    for label, files, seconds, extra in rows:
        rate = files / seconds if seconds else 0.0
        share = f"{extra[0]:.2f}x" if extra else ""
        flagged = str(extra[1]) if extra else ""
        print(f"| {label:<26} | {files:>6} | {seconds:>8.2f} | {rate:>8.0f} | {share:>8} | {flagged:>13} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
