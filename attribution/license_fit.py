"""License fit: may code under a source's license go into a project under another license?

The rules are data (:data:`attribution.license_table.TABLE`); this module reads them. Verdicts:
``compatible``, ``incompatible`` (the project's license cannot take the code in), ``unknown``
(either license is not known, or the project has none and the source is copyleft). SPDX
expressions work on both sides: a source ``A OR B`` fits when one alternative fits, ``A AND B``
when both do; a project offered as ``A OR B`` needs the code to fit every alternative.

    >>> fit("GPL-3.0", "MIT").sentence
    'GPL-3.0 source in an MIT project: incompatible'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from attribution.license_table import TABLE

__all__ = ["VERDICTS", "LicenseFit", "fit", "canonical", "known_licenses"]

VERDICTS = ("compatible", "incompatible", "unknown")
_NO_LICENSE = ("", "unknown", "none", "noassertion", "other")


@dataclass(frozen=True)
class LicenseFit:
    """The fit of one source license in one project license."""

    source: str  # the source's license as the index names it
    project: str  # the project's license ("unknown" when none was detected)
    verdict: str  # one of VERDICTS
    notice: bool = False  # the source's license asks to keep its notice
    note: str = ""  # what else to do, or why the verdict is unknown

    @property
    def sentence(self) -> str:
        """E.g. ``GPL-3.0 source in an MIT project: incompatible``."""
        project = (
            "a project without a detected license"
            if _is_none(self.project)
            else f"{_article(self.project)} {self.project} project"
        )
        source = "Source of unknown license" if _is_none(self.source) else f"{self.source} source"
        extra = []
        if self.verdict == "compatible" and self.notice:
            extra.append("keep its license notice")
        if self.note:
            extra.append(self.note)
        return f"{source} in {project}: {self.verdict}" + (f" ({'; '.join(extra)})" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "project", "verdict", "notice", "note", "text"}`` for JSON answers."""
        return {
            "source": self.source,
            "project": self.project,
            "verdict": self.verdict,
            "notice": self.notice,
            "note": self.note,
            "text": self.sentence,
        }


def _article(name: str) -> str:
    # "an MIT", "an LGPL", "an Apache", "a BSD", "a GPL": by the spoken first letter
    return "an" if name[:1].upper() in "AEIOFHLMNRSX" and not name.upper().startswith("EU") else "a"


def _is_none(license_id: str) -> bool:
    return license_id.strip().lower() in _NO_LICENSE


def _expand(names: list[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        if name.startswith("@"):
            if name not in TABLE["groups"]:
                raise ValueError(f"license_table: unknown group {name}; define it under 'groups'.")
            out.update(TABLE["groups"][name])
        else:
            out.add(name)
    return out


def _compile() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    lower = {k.lower(): v for k, v in TABLE["aliases"].items()}
    rules: dict[str, dict[str, Any]] = {}
    for key, rule in TABLE["sources"].items():
        into = _expand(rule["into"])
        entry = {
            "any": "*" in into,
            "into": into - {"*"},
            "except": _expand(rule.get("except", [])),
            "notice": bool(rule.get("notice", False)),
            "note": str(rule.get("note", "")),
        }
        for source in _expand([key]):
            rules[source] = entry
    known = set(rules) | {p for r in rules.values() for p in r["into"] | r["except"]}
    lower.update({k.lower(): k for k in known})
    return lower, rules


_CANONICAL, _RULES = _compile()


def canonical(license_id: str) -> str | None:
    """The rule table's id of one SPDX id (aliases resolved), or None when the table lacks it."""
    return _CANONICAL.get(license_id.strip().strip("()").lower())


def known_licenses() -> list[str]:
    """Every source license the table has a rule for."""
    return sorted(_RULES)


def _alternatives(expression: str) -> list[list[str]]:
    """An SPDX expression as OR-alternatives of AND-terms (``WITH`` exceptions dropped)."""
    out = []
    for alt in re.split(r"\s+OR\s+", expression.strip().strip("()")):
        terms = [re.split(r"\s+WITH\s+", t.strip("() "))[0] for t in re.split(r"\s+AND\s+", alt)]
        out.append([t for t in terms if t])
    return out


def _one(source: str, project: str | None) -> tuple[str, bool, str]:
    """Verdict, notice and note of one source id in one project id (None: no project license)."""
    src = canonical(source)
    rule = _RULES.get(src or "")
    if rule is None:
        return "unknown", False, f"no rule for {source}: check its terms"
    if project is None:
        if rule["any"]:
            return "compatible", rule["notice"], rule["note"]
        return "unknown", rule["notice"], "add a license to the project to check this"
    proj = canonical(project)
    if proj is None:
        return "unknown", rule["notice"], f"no rule for the project's license {project}"
    fits = (rule["any"] or proj in rule["into"]) and proj not in rule["except"]
    return ("compatible" if fits else "incompatible"), rule["notice"], rule["note"] if fits else ""


_ORDER = {"compatible": 0, "unknown": 1, "incompatible": 2}


def fit(source_license: str, project_license: str | None) -> LicenseFit:
    """How code under ``source_license`` fits a project under ``project_license``.

    Args:
        source_license: SPDX id or expression of the matched source (``unknown`` when none).
        project_license: SPDX id or expression of the project; None or ``unknown`` when the
            project has no detected license.

    Returns:
        The verdict with the notice flag and a note; never raises for unknown ids.
    """
    project_shown = project_license or "unknown"
    if _is_none(source_license):
        return LicenseFit(
            source_license or "unknown",
            project_shown,
            "unknown",
            False,
            "the source states no license: its authors keep all rights",
        )
    projects: list[str | None] = (
        [None]
        if project_license is None or _is_none(project_license)
        else [t for alt in _alternatives(project_license) for t in alt]
    )
    best: tuple[str, bool, str] | None = None
    for alternative in _alternatives(source_license):
        # every term of the source alternative must fit every license the project is offered under
        results = [_one(term, proj) for term in alternative for proj in projects]
        worst = max(results, key=lambda r: _ORDER[r[0]])
        combined = (
            worst[0],
            any(r[1] for r in results),
            "; ".join(dict.fromkeys(r[2] for r in results if r[2])),
        )
        if best is None or _ORDER[combined[0]] < _ORDER[best[0]]:
            best = combined
    assert best is not None
    return LicenseFit(source_license, project_shown, *best)
