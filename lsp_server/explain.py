"""Explain: a plain-language explanation of the selected code (`stackcoder/explain`, `stackcoder.explain`)."""

from __future__ import annotations

from engine.types import ChatRequest
from lsp_server.settings import ChatSettings

__all__ = ["explain_messages", "explain_request"]

MAX_CODE_CHARS = 12_000  # longer selections are cut (the prompt must fit the context window anyway)


def explain_messages(code: str, language_id: str | None) -> list[dict[str, str]]:
    """The one-turn conversation asking the model to explain ``code``."""
    lang = language_id or ""
    if len(code) > MAX_CODE_CHARS:
        code = code[:MAX_CODE_CHARS] + "\n# ... (selection cut)\n"
    return [
        {
            "role": "user",
            "content": f"Explain what the following {lang or 'code'} does, step by step, "
            f"and point out anything surprising.\n\n```{lang}\n{code.rstrip()}\n```",
        }
    ]


def explain_request(code: str, language_id: str | None, settings: ChatSettings) -> ChatRequest:
    """The engine's request for an explanation of ``code``."""
    return ChatRequest(
        messages=tuple(explain_messages(code, language_id)),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
    )
