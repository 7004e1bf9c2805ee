"""The local inference engine: load a StarCoder-family model and complete, stream and chat with it.

from engine import load_model
model = load_model()                      # the embedded default model (backend "auto")
model.complete(prefix, suffix).text
"""

from engine.errors import EngineError
from engine.generation import CancelToken, GenerationConfig
from engine.model import CodeModel, load_model
from engine.paths import default_model_path
from engine.types import Completion, Snippet

__all__ = [
    "CancelToken",
    "CodeModel",
    "Completion",
    "EngineError",
    "GenerationConfig",
    "Snippet",
    "default_model_path",
    "load_model",
]
