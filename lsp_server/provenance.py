"""Provenance: the attribution index inside the server, its diagnostics and hovers.

Code is checked against the index (``attribution.Index``); each match becomes a Warning
diagnostic (source ``stackcoder``) naming the repository, path, license and URL, with
``relatedInformation`` and ``data: {match}``. Hovering such a range shows the matching source.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from lsp_server.documents import UTF16, CodeUnits
from lsp_server.errors import IndexUnavailableError
from lsp_server.imports import native_init
from lsp_server.protocol import DIAGNOSTIC_SOURCE
from lsp_server.status import ComponentState

__all__ = [
    "ProvenanceHost",
    "Finding",
    "default_index_path",
    "findings_for",
    "diagnostic_of",
    "hover_for",
    "match_json",
    "shift_findings",
]

log = logging.getLogger(__name__)


def default_index_path() -> Path:
    """The default attribution index: $STACKCODER_INDEX, else <repo>/models/attribution-index."""
    import os

    env = os.environ.get("STACKCODER_INDEX")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models" / "attribution-index"


@dataclass(frozen=True)
class Finding:
    """One match of checked code, placed in a document."""

    range: types.Range  # in the document, client units
    match: dict[str, Any]  # Match as in the report JSON
    source_text: str  # the matching lines of the indexed source


class ProvenanceHost:
    """Holds the attribution index and the findings published per document."""

    def __init__(self, state: ComponentState) -> None:
        self.state = state
        self.index: Any | None = None
        self._lock = threading.Lock()
        self.findings: dict[str, list[Finding]] = {}

    def open(self, index_path: str | None) -> Any | None:
        """Open the index at ``index_path`` (None = the default, only if present); blocking.

        Returns None without error when no path is set and no default index exists. Raises the
        attribution error (and records it) when the index is missing or corrupt.
        """
        explicit = index_path is not None
        path = Path(index_path) if explicit else default_index_path()
        with self._lock:
            self.state.path = str(path)
            self.state.loaded = False
            self.state.error = None
            self.index = None
            if not explicit and not path.exists():
                self.state.path = None
                return None
            try:
                with native_init():
                    from attribution import Index, kernels

                    self.index = Index.open(str(path))
                    kernels.warm_up()  # the first check of a completion then answers at full speed
            except Exception as exc:
                self.state.error = str(exc) or exc.__class__.__name__
                raise
            self.state.loaded = True
            log.info("attribution index loaded from %s", path)
            return self.index

    def require(self) -> Any:
        """The loaded index, or IndexUnavailableError saying why there is none."""
        if self.index is None:
            why = self.state.error or "no index is configured"
            raise IndexUnavailableError(
                f"The attribution index is not available ({why}); build one with `stackcoder index build` "
                "and set stackcoder.provenance.indexPath."
            )
        return self.index

    def query(self, text: str) -> Any:
        """The attribution report of ``text`` (blocking)."""
        return self.require().query(text)

    def source_text(self, match: Any) -> str:
        """The indexed lines a match points at ('' when the index cannot show them)."""
        try:
            return str(self.require().source_text(match))
        except Exception:
            log.exception("reading the source of a match failed")
            return ""


def match_json(match: Any) -> dict[str, Any]:
    if isinstance(match, dict):
        return match
    if hasattr(match, "to_dict"):
        return match.to_dict()
    from dataclasses import asdict, is_dataclass

    if is_dataclass(match):
        return asdict(match)
    return {
        k: getattr(match, k) for k in dir(match) if not k.startswith("_") and not callable(getattr(match, k))
    }


def findings_for(
    host: ProvenanceHost, report: Any, first_line: int, line_lengths: list[int]
) -> list[Finding]:
    """Place a report's matches in a document: query line 1 is document line ``first_line``.

    ``line_lengths`` are the lengths (client units) of the checked lines, to end ranges at line ends.
    """
    out = []
    for match in report.matches:
        m = match_json(match)
        q_start = max(int(m.get("query_start_line", 1)) - 1, 0)
        q_end = max(int(m.get("query_end_line", q_start + 1)) - 1, q_start)
        q_end = min(q_end, max(len(line_lengths) - 1, 0))
        q_start = min(q_start, q_end)
        end_char = line_lengths[q_end] if line_lengths else 0
        rng = types.Range(
            start=types.Position(line=first_line + q_start, character=0),
            end=types.Position(line=first_line + q_end, character=end_char),
        )
        out.append(Finding(rng, m, host.source_text(match)))
    return out


def describe(match: dict[str, Any]) -> str:
    """One line naming where a match comes from."""
    lines = f"lines {match.get('source_start_line')}-{match.get('source_end_line')}"
    url = match.get("url") or "no URL"
    fit = (match.get("license_fit") or {}).get("text")
    return (
        f"Matches {match.get('kind', '?')} code in {match.get('repo')}/{match.get('path')} ({lines}), "
        f"license {match.get('license')}, {url}" + (f". {fit}" if fit else "")
    )


def diagnostic_of(finding: Finding, uri: str) -> types.Diagnostic:
    """The Warning diagnostic of one finding."""
    m = finding.match
    related = []
    if m.get("url"):
        related.append(
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri=str(m["url"]),
                    range=types.Range(
                        start=types.Position(
                            line=max(int(m.get("source_start_line", 1)) - 1, 0), character=0
                        ),
                        end=types.Position(line=max(int(m.get("source_end_line", 1)) - 1, 0), character=0),
                    ),
                ),
                message=f"{m.get('repo')}/{m.get('path')} ({m.get('license')})",
            )
        )
    else:
        related.append(
            types.DiagnosticRelatedInformation(
                location=types.Location(uri=uri, range=finding.range),
                message=f"{m.get('repo')}/{m.get('path')} ({m.get('license')})",
            )
        )
    return types.Diagnostic(
        range=finding.range,
        message=describe(m),
        severity=types.DiagnosticSeverity.Warning,
        source=DIAGNOSTIC_SOURCE,
        code=str(m.get("kind", "match")),
        related_information=related,
        data={"match": m},
    )


def _contains(rng: types.Range, pos: types.Position) -> bool:
    start, end = (rng.start.line, rng.start.character), (rng.end.line, rng.end.character)
    return start <= (pos.line, pos.character) <= end


def hover_for(findings: list[Finding], position: types.Position) -> types.Hover | None:
    """A hover showing the matching source of the findings under ``position``."""
    parts = []
    hit_range = None
    for f in findings:
        if _contains(f.range, position):
            hit_range = hit_range or f.range
            parts.append(f"**{describe(f.match)}**\n\n```\n{f.source_text.rstrip()}\n```")
    if not parts:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)),
        range=hit_range,
    )


def _key(pos: types.Position) -> tuple[int, int]:
    return pos.line, pos.character


def _shift(pos: types.Position, edit: types.Range, lines: list[str], units: CodeUnits) -> types.Position:
    """Where ``pos`` (at or after the edit's end) lands once the edit's range holds ``lines``."""
    line = pos.line - (edit.end.line - edit.start.line) + len(lines) - 1
    if pos.line != edit.end.line:
        return types.Position(line=line, character=pos.character)
    base = (edit.start.character if len(lines) == 1 else 0) + units.count(lines[-1])
    return types.Position(line=line, character=base + pos.character - edit.end.character)


def shift_findings(findings: list[Finding], changes: list[Any], units: CodeUnits = UTF16) -> list[Finding]:
    """Findings after a document's content changes (applied in order, as LSP sends them).

    A finding before an edit stays, one after it moves with the text, one the edit touches inside
    is dropped (its code changed, so the match no longer describes it), and a whole-document
    change drops them all.
    """
    for change in changes:
        edit = getattr(change, "range", None)
        if edit is None:
            return []
        if _key(edit.end) < _key(edit.start):
            edit = types.Range(start=edit.end, end=edit.start)
        lines = str(change.text).replace("\r\n", "\n").split("\n")
        kept = []
        for f in findings:
            if _key(f.range.end) <= _key(edit.start):
                kept.append(f)  # wholly before the edit
            elif _key(f.range.start) >= _key(edit.end):
                moved = types.Range(
                    start=_shift(f.range.start, edit, lines, units),
                    end=_shift(f.range.end, edit, lines, units),
                )
                kept.append(Finding(moved, f.match, f.source_text))
        findings = kept
    return findings
