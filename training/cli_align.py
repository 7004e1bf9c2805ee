"""Training stages registered under `stackcoder train`."""

from __future__ import annotations

import argparse


def register_stages(stages: argparse._SubParsersAction) -> None:
    """Add this module's stages to `stackcoder train`."""
