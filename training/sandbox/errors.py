"""Errors of the execution sandbox (part of the training package's hierarchy)."""

from __future__ import annotations

from training.errors import TrainingError

__all__ = ["SandboxError"]


class SandboxError(TrainingError):
    """The sandbox cannot run programs with the requested isolation."""
