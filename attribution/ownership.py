"""Code that is the user's own: matches against it are not findings.

Two sources say what is the user's:

* the workspace's own identity: the ``owner/name`` and ``name`` of each git remote (from
  ``.git/config``), and the folder itself (an index built over a folder holding the workspace
  points its matches' ``file://`` URLs into it);
* the list the user keeps in ``.stackcoder/mine.json`` (also written by the editor's quick fix)
  and the ``stackcoder.provenance.mine`` setting: whole repositories, paths (glob patterns) in a
  repository, or single findings (source lines of one file).

``.stackcoder/mine.json``::

    {"mine": [
      {"repo": "acme/widgets"},
      {"repo": "acme/tools", "path": "src/*.py"},
      {"repo": "acme/tools", "path": "src/io.py", "lines": [10, 24]}
    ]}

In the setting, ``"acme/widgets"`` is a repository and ``"acme/tools:src/*.py"`` a path.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from attribution.errors import AttributionError

__all__ = [
    "MINE_FILE",
    "MineRule",
    "Ownership",
    "MineFileError",
    "git_identities",
    "read_mine_file",
    "add_to_mine_file",
    "rule_of_setting",
]

MINE_FILE = Path(".stackcoder") / "mine.json"
_REMOTE_RE = re.compile(r"^\s*url\s*=\s*(\S+)\s*$", re.M)


class MineFileError(AttributionError, ValueError):
    """``.stackcoder/mine.json`` is not valid; the message says what to fix."""


@dataclass(frozen=True)
class MineRule:
    """One entry of the user's list: a repository, a path glob in it, or source lines of one file."""

    repo: str
    path: str | None = None  # glob, matched against the source's path
    lines: tuple[int, int] | None = None  # source lines (1-based, inclusive) of one finding

    @property
    def scope(self) -> str:
        """``repository``, ``path`` or ``finding``."""
        return "finding" if self.lines else ("path" if self.path else "repository")

    def covers(self, match: Mapping[str, Any]) -> bool:
        """Whether a match (report JSON) falls under this rule."""
        if not _same_repo(self.repo, str(match.get("repo", ""))):
            return False
        if self.path is not None:
            path = str(match.get("path", ""))
            if path != self.path and not fnmatch.fnmatchcase(path, self.path):
                return False
        if self.lines is not None:
            start = int(match.get("source_start_line", 0))
            end = int(match.get("source_end_line", start))
            return start <= self.lines[1] and self.lines[0] <= end
        return True

    def to_json(self) -> dict[str, Any]:
        """The entry as written in ``mine.json``."""
        out: dict[str, Any] = {"repo": self.repo}
        if self.path is not None:
            out["path"] = self.path
        if self.lines is not None:
            out["lines"] = list(self.lines)
        return out


def _same_repo(rule: str, repo: str) -> bool:
    """``owner/name`` compares whole; a bare ``name`` on either side compares names only."""
    a, b = rule.strip().lower().removesuffix(".git"), repo.strip().lower().removesuffix(".git")
    if not a or not b:
        return False
    if "/" in a and "/" in b:
        return a == b
    return a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]


def _rule_of_json(entry: Any, where: str) -> MineRule:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("repo"), str) or not entry["repo"].strip():
        raise MineFileError(f'{where} needs a non-empty "repo" string, e.g. {{"repo": "owner/name"}}.')
    path = entry.get("path")
    if path is not None and (not isinstance(path, str) or not path):
        raise MineFileError(f"{where}.path must be a non-empty string (a path or glob in the repository).")
    lines = entry.get("lines")
    if lines is not None:
        ok = (
            isinstance(lines, list)
            and len(lines) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in lines)
            and lines[0] <= lines[1]
        )
        if not ok or path is None:
            raise MineFileError(
                f'{where}.lines must be [first, last] source lines (1-based) and needs a "path".'
            )
        lines = (lines[0], lines[1])
    return MineRule(entry["repo"].strip(), path, lines)


def read_mine_file(path: str | Path) -> list[MineRule]:
    """The rules of a ``mine.json`` file ([] when it does not exist).

    Raises:
        MineFileError: the file is not JSON or an entry is malformed (the message names it).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise MineFileError(f"cannot read {path} ({exc}); check its permissions.") from exc
    try:
        data = json.loads(text) if text.strip() else {"mine": []}
    except json.JSONDecodeError as exc:
        raise MineFileError(f"{path} is not valid JSON ({exc}); fix or delete it.") from exc
    entries = data.get("mine") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise MineFileError(f'{path} must hold an object {{"mine": [...]}}; fix or delete it.')
    return [_rule_of_json(e, f"{path}: mine[{i}]") for i, e in enumerate(entries)]


def add_to_mine_file(path: str | Path, rule: MineRule) -> bool:
    """Append ``rule`` to a ``mine.json`` (created with its folder); False if it was already there."""
    path = Path(path)
    rules = read_mine_file(path)
    if rule in rules:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"mine": [r.to_json() for r in [*rules, rule]]}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return True


def rule_of_setting(value: str) -> MineRule:
    """A rule of the setting's form: ``owner/name`` or ``owner/name:path-glob``."""
    repo, _, path = value.strip().partition(":")
    if not repo.strip():
        raise MineFileError(f"{value!r} is not a repository; write owner/name or owner/name:path/glob.")
    return MineRule(repo.strip(), path.strip() or None)


def _remote_name(url: str) -> str | None:
    """``owner/name`` of a git remote URL (https, ssh or scp-like), or None."""
    url = url.strip().removesuffix("/").removesuffix(".git")
    scp = re.match(r"^[\w.-]+@[\w.-]+:(.+)$", url)
    path = scp.group(1) if scp else urlparse(url).path
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def git_identities(folder: str | Path) -> set[str]:
    """``owner/name`` and ``name`` of every remote of the git repository at ``folder``."""
    config = Path(folder) / ".git" / "config"
    try:
        text = config.read_text(errors="replace")
    except OSError:
        return set()
    out: set[str] = set()
    for url in _REMOTE_RE.findall(text):
        name = _remote_name(url)
        if name:
            out.add(name)
    return out


@dataclass
class Ownership:
    """What counts as the user's own code in one workspace folder (or scanned repository)."""

    root: Path | None = None
    identities: set[str] = field(default_factory=set)  # owner/name of the workspace's remotes
    rules: list[MineRule] = field(default_factory=list)

    @classmethod
    def of_folder(cls, root: str | Path, settings: Iterable[str] = ()) -> Ownership:
        """The folder's git identity, its ``.stackcoder/mine.json`` and the setting's entries.

        Raises:
            MineFileError: mine.json or a setting entry is malformed.
        """
        root = Path(root)
        rules = read_mine_file(root / MINE_FILE) + [rule_of_setting(s) for s in settings]
        return cls(root=root, identities=git_identities(root), rules=rules)

    def why_mine(self, match: Mapping[str, Any]) -> str | None:
        """Why a match is the user's own code (``"own repository"``, ``"marked as yours"``), or None."""
        repo = str(match.get("repo", ""))
        if any(_same_repo(identity, repo) for identity in self.identities):
            return "own repository"
        if self.root is not None and _inside(match.get("url"), self.root):
            return "own repository"
        if any(rule.covers(match) for rule in self.rules):
            return "marked as yours"
        return None

    def is_mine(self, match: Mapping[str, Any]) -> bool:
        """Whether a match points at the user's own code."""
        return self.why_mine(match) is not None


def _inside(url: Any, root: Path) -> bool:
    if not isinstance(url, str) or not url.startswith("file:"):
        return False
    try:
        target = Path(unquote(urlparse(url).path)).resolve()
        return target.is_relative_to(root.resolve())
    except (OSError, ValueError):
        return False
