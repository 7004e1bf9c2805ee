"""Where the engine finds its default model and keeps its conversion cache."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# The embedded model (trained from scratch by `training/`): the fallback when no real model is pulled.
EMBEDDED_MODEL_NAME = "stackcoder-mini"


def embedded_model_path() -> Path:
    """<repo>/models/stackcoder-mini: small, always present, rarely right (see its model card)."""
    return REPO_ROOT / "models" / EMBEDDED_MODEL_NAME


def cache_dir() -> Path:
    """Root of the engine's caches: $STACKCODER_CACHE, else ~/.cache/stackcoder."""
    env = os.environ.get("STACKCODER_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "stackcoder"


def ct2_cache_dir() -> Path:
    """Folder holding CTranslate2 conversions keyed by checkpoint content."""
    return cache_dir() / "ct2"
