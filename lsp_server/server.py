"""The StackCoder language server: state on a LanguageServer subclass, thin handlers.

Each handler validates its input, then delegates to the feature module (completion, infill,
explain, chat, provenance, status). Blocking work (model loading, generation, index queries)
runs off the event loop; a missing model or index is reported once and the rest keeps working.
Importing this module registers every handler on ``server``.
"""

from __future__ import annotations

from lsp_server import handlers_actions, handlers_completion, handlers_lifecycle
from lsp_server.app import VERSION, StackCoderServer, server

__all__ = ["StackCoderServer", "server", "VERSION", "HANDLER_MODULES"]

HANDLER_MODULES = (handlers_lifecycle, handlers_completion, handlers_actions)
