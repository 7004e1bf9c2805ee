"""The training package's error hierarchy: every message is one sentence saying what is wrong and what to do."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every error the training stages raise on purpose."""


class CorpusError(TrainingError):
    """The corpus sources are missing, empty or unreadable."""


class TokenizerError(TrainingError):
    """The tokenizer cannot be trained or loaded."""


class ConfigError(TrainingError):
    """A training option or model configuration is invalid."""


class ResourceError(TrainingError):
    """The requested run does not fit in the available memory or disk."""


class CheckpointError(TrainingError):
    """A checkpoint is missing, incomplete or does not match the run."""


class EvaluationError(TrainingError):
    """An evaluation cannot run on the given model or data."""


class ExportError(TrainingError):
    """Exporting a checkpoint for the engine failed."""
