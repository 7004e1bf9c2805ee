"""The attribution report: verdict, ranked matches, JSON (DESIGN.md) and a side-by-side view."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

__all__ = ["Match", "Report", "VERDICTS", "KINDS"]

VERDICTS = ("copied", "similar", "original")
KINDS = ("exact", "near", "bm25")


@dataclass(frozen=True)
class Match:
    """One place of the corpus the query matches. Lines are 1-based and inclusive.

    ``score``: for ``exact``, the share of the query's normalised characters the span covers;
    for ``near``, the exact Jaccard similarity of the chunks' shingle sets; for ``bm25``, the
    BM25 score.
    """

    repo: str
    path: str
    license: str
    url: str | None
    source_start_line: int
    source_end_line: int
    query_start_line: int
    query_end_line: int
    kind: str
    score: float
    segment: str = field(default="", compare=False, repr=False)
    file_id: int = field(default=-1, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The match as DESIGN.md's JSON object."""
        data = asdict(self)
        del data["segment"], data["file_id"]
        data["score"] = round(float(self.score), 4)
        return data


@dataclass
class Report:
    """Verdict and matches of one query."""

    verdict: str
    matches: list[Match]
    query_text: str = field(default="", repr=False)
    source_loader: Callable[[Match], str] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """``{"verdict": ..., "matches": [...]}`` as DESIGN.md fixes it."""
        return {"verdict": self.verdict, "matches": [m.to_dict() for m in self.matches]}

    def to_terminal(self, width: int | None = None, max_lines: int = 40) -> str:
        """A readable form: the verdict, then each match with source and query side by side."""
        width = width or shutil.get_terminal_size((120, 24)).columns
        out = [f"verdict: {self.verdict}" + ("" if self.matches else " (no match in the index)")]
        query_lines = self.query_text.splitlines()
        column = max(20, (width - 3) // 2)
        for i, m in enumerate(self.matches):
            where = f"{m.repo}/{m.path}:{m.source_start_line}-{m.source_end_line}"
            out.append("")
            out.append(f"[{i + 1}] {m.kind} score={m.score:.3f}  {where}  license={m.license}")
            if m.url:
                out.append(f"    {m.url}")
            out.append(f"    query lines {m.query_start_line}-{m.query_end_line}")
            left = (self.source_loader(m) if self.source_loader else "").splitlines()[:max_lines]
            right = query_lines[m.query_start_line - 1 : m.query_end_line][:max_lines]
            out.append(f"{'source':<{column}} | query")
            out.append(f"{'-' * column}-+-{'-' * column}")
            for k in range(max(len(left), len(right))):
                a = left[k] if k < len(left) else ""
                b = right[k] if k < len(right) else ""
                out.append(f"{_fit(a, column):<{column}} | {_fit(b, column)}")
        return "\n".join(out)


def _fit(text: str, width: int) -> str:
    text = text.expandtabs(4)
    return text if len(text) <= width else text[: width - 1] + "…"
