"""The local inference engine: load a code model and complete, stream and chat with it.

from engine import load_model
model = load_model()                      # the default model (the catalog's, once pulled)
model.complete(prefix, suffix).text
"""

from engine.catalog import default_model
from engine.errors import EngineError
from engine.generation import CancelToken, GenerationConfig
from engine.model import CodeModel, load_model
from engine.types import Completion, Snippet

__all__ = [
    "CancelToken",
    "CodeModel",
    "Completion",
    "EngineError",
    "GenerationConfig",
    "Snippet",
    "default_model",
    "load_model",
]
