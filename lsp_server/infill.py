"""Infill: fill the selection, or a `<FILL_HERE>` marker inside it, as a workspace edit (`stackcoder.infill`)."""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types

from engine.types import CompletionRequest
from lsp_server.documents import UTF16, CodeUnits, offset_at, position_at
from lsp_server.settings import CompletionSettings

__all__ = ["FILL_MARKER", "InfillSite", "infill_edit", "infill_request", "infill_site"]

FILL_MARKER = "<FILL_HERE>"
INFILL_MIN_TOKENS = 128  # an infill usually spans several lines


@dataclass(frozen=True)
class InfillSite:
    """Where the model writes: the document around the hole and the range the answer replaces."""

    prefix: str
    suffix: str
    range: types.Range


def infill_site(text: str, selection: types.Range, units: CodeUnits = UTF16) -> InfillSite:
    """The hole of a selection: its `<FILL_HERE>` marker if it has one, else the whole selection."""
    start = offset_at(text, selection.start, units)
    end = offset_at(text, selection.end, units)
    start, end = min(start, end), max(start, end)
    marker = text.find(FILL_MARKER, start, end) if end > start else -1
    if marker >= 0:
        start, end = marker, marker + len(FILL_MARKER)
    return InfillSite(
        prefix=text[:start],
        suffix=text[end:],
        range=types.Range(start=position_at(text, start, units), end=position_at(text, end, units)),
    )


def infill_request(
    uri: str,
    site: InfillSite,
    settings: CompletionSettings,
    *,
    repo_name: str | None = None,
    path: str | None = None,
) -> CompletionRequest:
    """The engine's request that fills the hole: several lines, never from the cache."""
    return CompletionRequest(
        document=uri,
        prefix=site.prefix,
        suffix=site.suffix,
        repo_name=repo_name,
        path=path,
        max_new_tokens=max(settings.max_new_tokens, INFILL_MIN_TOKENS),
        temperature=settings.temperature,
        mode="multi",
        use_cache=False,
    )


def infill_edit(uri: str, version: int | None, site: InfillSite, text: str) -> types.WorkspaceEdit:
    """The workspace edit replacing the hole with ``text``."""
    edit = types.TextEdit(range=site.range, new_text=text)
    return types.WorkspaceEdit(changes={uri: [edit]})
