#!/usr/bin/env python3
"""Build the default provenance index: the Python standard library, part of the default model's corpus.

The language server uses ``models/attribution-index`` when no other index is configured. The
standard library is written as one repository (``python/cpython``, PSF-2.0) in The Stack's jsonl
schema and indexed with ``stackcoder index build``. Nothing happens when a readable index of
this version exists.

Usage: scripts/default_index.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "models" / "attribution-index"
SKIP_PARTS = {"site-packages", "__pycache__", "test", "tests", "idlelib", "lib2to3"}


def write_stdlib_jsonl(target: Path) -> int:
    """Write the standard library's Python files to ``target`` in The Stack's schema."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    count = 0
    with gzip.open(target, "wt", encoding="utf-8") as out:
        for path in sorted(stdlib.rglob("*.py")):
            if SKIP_PARTS.intersection(path.relative_to(stdlib).parts):
                continue
            try:
                content = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            record = {
                "content": content,
                "max_stars_repo_name": "python/cpython",
                "max_stars_repo_path": f"Lib/{path.relative_to(stdlib).as_posix()}",
                "max_stars_repo_licenses": ["PSF-2.0"],
            }
            out.write(json.dumps(record) + "\n")
            count += 1
    return count


def _unreadable(index: Path) -> str | None:
    """Why the index at ``index`` cannot be opened (another format version, damage), or None."""
    sys.path.insert(0, str(ROOT))
    from attribution.errors import AttributionError
    from attribution.manifest import read_manifest

    try:
        read_manifest(index)
    except AttributionError as exc:
        return str(exc)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="index folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild an existing index")
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        problem = _unreadable(args.out)
        if problem is None:
            print(f"default index already at {args.out}")
            return 0
        print(f"rebuilding the default index: {problem}")
    if args.out.exists():
        shutil.rmtree(args.out)
    stackcoder = ROOT / ".venv" / "bin" / "stackcoder"
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "cpython.jsonl.gz"
        n = write_stdlib_jsonl(corpus)
        print(f"indexing {n} standard-library files into {args.out}")
        subprocess.run([str(stackcoder), "index", "build", str(corpus), "--out", str(args.out)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
