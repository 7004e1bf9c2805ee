"""A report seen from one project: the user's own code left out, each match's license fit added.

``review_report(report, context)`` turns an attribution ``Report`` into a ``ReviewedReport``: the
matches against the user's own code removed (counted in ``mine``), the verdict recomputed over
what is left, and ``license_fit`` on each match. Its JSON is DESIGN.md's report plus
``"mine"``, ``"project_license"`` and, on each match, ``"license_fit"``
(``{"source", "project", "verdict", "notice", "note", "text"}``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.license_fit import fit
from attribution.licenses import UNKNOWN, detect_license
from attribution.ownership import Ownership
from attribution.report import Match, Report

__all__ = [
    "ProjectContext",
    "ReviewedMatch",
    "ReviewedReport",
    "review_report",
    "review",
    "flagged_copied",
    "has_incompatible",
    "NEAR_COPIED",
]

NEAR_COPIED = 0.7  # a near match at this Jaccard counts as copied (QueryConfig.near_threshold)


@dataclass
class ProjectContext:
    """The project a report is read for: its license and what is its own code."""

    license: str = UNKNOWN
    ownership: Ownership = field(default_factory=Ownership)

    @classmethod
    def of_folder(cls, root: str | Path, mine_setting: Iterable[str] = ()) -> ProjectContext:
        """License from the folder's LICENSE / pyproject.toml / package.json; its ownership rules.

        Raises:
            MineFileError: the folder's ``.stackcoder/mine.json`` or a setting entry is malformed.
        """
        return cls(detect_license(root), Ownership.of_folder(root, mine_setting))


@dataclass(frozen=True)
class ReviewedMatch(Match):
    """A match with its license fit in the project (``LicenseFit.to_dict()``)."""

    license_fit: dict = field(default_factory=dict, compare=False)


@dataclass
class ReviewedReport(Report):
    """A report read for one project."""

    mine: int = 0  # matches left out as the user's own code
    project_license: str = UNKNOWN

    def to_dict(self) -> dict:
        """DESIGN.md's report plus ``mine``, ``project_license`` and each match's ``license_fit``."""
        return {**super().to_dict(), "mine": self.mine, "project_license": self.project_license}


def flagged_copied(matches: Iterable[Any], threshold: float = NEAR_COPIED) -> bool:
    """Whether any match (a ``Match`` or its JSON) makes the verdict ``copied``."""
    for m in matches:
        kind = m.get("kind") if isinstance(m, dict) else m.kind
        score = float(m.get("score", 0) if isinstance(m, dict) else m.score)
        if kind == "exact" or (kind == "near" and score >= threshold):
            return True
    return False


def has_incompatible(report: Any) -> bool:
    """Whether a reviewed report holds a copy whose license is incompatible with the project's."""
    matches = getattr(report, "matches", None) or []
    return any(
        (getattr(m, "license_fit", None) or {}).get("verdict") == "incompatible" and flagged_copied([m])
        for m in matches
    )


def review_report(report: Report, context: ProjectContext | None) -> ReviewedReport:
    """The report for this project (see the module docstring); ``context`` None reads it for a
    project of unknown license with no code of its own."""
    context = context or ProjectContext()
    kept: list[Match] = []
    mine = 0
    for m in report.matches:
        if context.ownership.is_mine(m.to_dict()):
            mine += 1
            continue
        fields = {f.name: getattr(m, f.name) for f in dataclasses.fields(Match)}
        kept.append(ReviewedMatch(**fields, license_fit=fit(m.license or UNKNOWN, context.license).to_dict()))
    verdict = report.verdict
    if mine:
        verdict = "copied" if flagged_copied(kept) else ("similar" if kept else "original")
    return ReviewedReport(
        verdict, kept, report.query_text, report.source_loader, mine=mine, project_license=context.license
    )


def _match_of_json(data: dict[str, Any]) -> Match:
    names = {f.name for f in dataclasses.fields(Match)}
    return Match(**{k: v for k, v in data.items() if k in names})


def review(report: Report | dict[str, Any], context: ProjectContext | None) -> dict[str, Any]:
    """``review_report`` on a ``Report`` or a report's JSON, answered as JSON."""
    if isinstance(report, dict):
        report = Report(report["verdict"], [_match_of_json(m) for m in report["matches"]])
    return review_report(report, context).to_dict()
