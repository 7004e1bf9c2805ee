"""The local inference engine: load a code model and complete, stream and chat with it.

from engine import load_model
model = load_model()                      # the default model (the catalog's, once pulled)
model.complete(prefix, suffix).text

An editor's server uses ``CompletionService`` (``engine.service``) instead: typed requests,
superseding per document, caches and idle-time work.
"""

from engine.catalog import default_model
from engine.errors import EngineError
from engine.generation import CancelToken, GenerationConfig
from engine.model import CodeModel, load_model
from engine.service import CompletionService
from engine.types import ChatRequest, Completion, CompletionCounters, CompletionRequest, Snippet

__all__ = [
    "CancelToken",
    "ChatRequest",
    "CodeModel",
    "Completion",
    "CompletionCounters",
    "CompletionRequest",
    "CompletionService",
    "EngineError",
    "GenerationConfig",
    "Snippet",
    "default_model",
    "load_model",
]
