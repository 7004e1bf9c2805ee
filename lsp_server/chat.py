"""Chat: answers to a conversation, grounded in the editor's selection, file and workspace (`stackcoder/chat`).

The engine's chat (``CompletionService.chat``) picks the prompt that fits the model (instruct template or a
Tech-Assistant-style few-shot dialogue for base models) and fits it into the context window;
this module assembles the context: the selection, an excerpt of the current file around it and
the workspace chunks most related to the question.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engine.types import ChatRequest
from lsp_server.protocol import ChatContext, ChatParams
from lsp_server.settings import ChatSettings

__all__ = ["chat_context", "chat_context_head", "chat_request"]

if TYPE_CHECKING:
    from lsp_server.workspace_index import WorkspaceIndex

log = logging.getLogger(__name__)

MAX_FILE_CHARS = 6_000
MAX_SELECTION_CHARS = 6_000
WORKSPACE_SNIPPETS = 3


def _file_excerpt(file_text: str, selection: str | None) -> str:
    if len(file_text) <= MAX_FILE_CHARS:
        return file_text
    at = file_text.find(selection) if selection else -1
    center = at + len(selection or "") // 2 if at >= 0 else 0
    start = max(0, min(center - MAX_FILE_CHARS // 2, len(file_text) - MAX_FILE_CHARS))
    return file_text[start : start + MAX_FILE_CHARS]


def chat_context_head(ctx: ChatContext) -> str:
    """The part of a chat's context that does not depend on the question: the current file and
    the selection (what ``stackcoder/warmChat`` processes before the question is asked)."""
    parts: list[str] = []
    if ctx.file_text:
        name = Path(ctx.uri).name if ctx.uri else "the current file"
        parts.append(
            f"The current file {name} ({ctx.language_id or 'text'}):\n{_file_excerpt(ctx.file_text, ctx.selection)}"
        )
    if ctx.selection:
        parts.append(f"The selected code:\n{ctx.selection[:MAX_SELECTION_CHARS]}")
    return "\n\n".join(parts)


def chat_context(params: ChatParams, index: WorkspaceIndex | None = None) -> str:
    """The context block of a chat prompt: the current file and the selection
    (``chat_context_head``), then the workspace snippets most related to the question."""
    ctx = params.context
    parts = [head] if (head := chat_context_head(ctx)) else []
    if index is not None:
        question = next((m["content"] for m in reversed(params.messages) if m["role"] == "user"), "")
        query = f"{question}\n{ctx.selection or ''}"
        exclude = None
        if ctx.uri and ctx.uri.startswith("file://"):
            from pygls.uris import to_fs_path

            exclude = to_fs_path(ctx.uri)
        try:
            for hit in index.search(query, exclude_path=exclude, limit=WORKSPACE_SNIPPETS):
                name = Path(hit.chunk.path).name
                parts.append(
                    f"From {name} (lines {hit.chunk.start_line}-{hit.chunk.end_line}):\n{hit.chunk.text}"
                )
        except Exception:
            log.exception("workspace retrieval for chat failed")
    return "\n\n".join(parts)


def chat_request(params: ChatParams, context: str, settings: ChatSettings) -> ChatRequest:
    """The engine's request for the assistant's next message."""
    return ChatRequest(
        messages=tuple(params.messages),
        context=context,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
    )
