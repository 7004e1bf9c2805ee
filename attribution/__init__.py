"""Provenance index: flags code copied from an indexed corpus, with repository, path and license.

``Index``, ``Report`` and ``Match`` are imported lazily so that ``stackcoder --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Index", "Report", "Match", "QueryConfig", "build_index", "BuildConfig", "AttributionError"]

if TYPE_CHECKING:
    from attribution.build import BuildConfig, build_index
    from attribution.errors import AttributionError
    from attribution.index import Index, QueryConfig
    from attribution.report import Match, Report

_LAZY = {
    "Index": "attribution.index",
    "QueryConfig": "attribution.index",
    "Report": "attribution.report",
    "Match": "attribution.report",
    "build_index": "attribution.build",
    "BuildConfig": "attribution.build",
    "AttributionError": "attribution.errors",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'attribution' has no attribute {name!r}")
