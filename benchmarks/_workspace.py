"""Helpers shared by the language-server benchmarks: which model to run, which project to use."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def resolve_model(args: argparse.Namespace) -> Path | str:
    """The model to use: --model, --tiny (a random-weight test model), else the default model."""
    if args.model:
        return Path(args.model)
    if args.tiny:
        sys.path.insert(0, str(REPO / "tests"))
        from helpers.tiny_models import ensure_tiny_model

        return ensure_tiny_model("gpt_bigcode")
    from engine import default_model

    chosen = default_model()
    if chosen.fallback_reason:
        print(f"note: {chosen.fallback_reason}", file=sys.stderr)
    return chosen.reference


def copy_project(name: str, dest: Path) -> Path:
    """Copy an installed package's sources into ``dest`` (the benchmark's workspace); returns ``dest``."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not an installed package; pass another --project")
    src = Path(next(iter(spec.submodule_search_locations)))
    shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
    return dest
