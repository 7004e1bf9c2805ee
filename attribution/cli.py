"""Sub-commands of `stackcoder` provided by `attribution`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `stackcoder` parser."""
