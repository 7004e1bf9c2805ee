"""Where the engine finds its default model and keeps its conversion cache."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# The embedded default model (trained by `training/`, converted for the engine).
DEFAULT_MODEL_NAME = "stackcoder-mini"


def default_model_path() -> Path:
    """The model used when none is named: $STACKCODER_MODEL, else <repo>/models/stackcoder-mini."""
    env = os.environ.get("STACKCODER_MODEL")
    if env:
        return Path(env).expanduser()
    return REPO_ROOT / "models" / DEFAULT_MODEL_NAME


def cache_dir() -> Path:
    """Root of the engine's caches: $STACKCODER_CACHE, else ~/.cache/stackcoder."""
    env = os.environ.get("STACKCODER_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "stackcoder"


def ct2_cache_dir() -> Path:
    """Folder holding CTranslate2 conversions keyed by checkpoint content."""
    return cache_dir() / "ct2"
