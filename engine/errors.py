"""The engine's error hierarchy: every message is one sentence saying what is wrong and what to do."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ModelNotFoundError(EngineError):
    """The model path does not exist or holds no model files."""


class UnsupportedModelError(EngineError):
    """The checkpoint's architecture is not one the engine can run."""


class CorruptModelError(EngineError):
    """A model file is missing, truncated or unreadable."""


class ConversionError(EngineError):
    """Converting a checkpoint to CTranslate2 failed."""


class BackendUnavailableError(EngineError):
    """The requested backend cannot be used (missing library, unreachable server)."""


class GenerationError(EngineError):
    """Generation failed for a reason other than cancellation."""
