"""Provenance as seen from the user's project: "this is mine", license fit, the reference log.

Every report the server shows is read for the workspace folder of its document
(``attribution.review``): matches of the folder's own repository (its git remotes) and of what
the user marked as theirs (``.stackcoder/mine.json``, ``stackcoder.provenance.mine``) are left
out, and each match says how its license fits the folder's license. The quick fix on a
provenance diagnostic (``stackcoder.markMine``) adds an entry to ``mine.json``; accepted
suggestions and inserted chat code that match the index are appended to
``.stackcoder/references.log``, which the user can open.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from attribution.licenses import detect_license
from attribution.ownership import (
    MINE_FILE,
    MineFileError,
    MineRule,
    Ownership,
    add_to_mine_file,
    git_identities,
)
from attribution.review import ProjectContext, review_report
from lsp_server.protocol import CMD_MARK_MINE

__all__ = [
    "SCOPES",
    "REFERENCE_LOG",
    "ProjectContexts",
    "folder_root",
    "rule_for",
    "quick_fixes",
    "reference_lines",
    "append_references",
    "log_references",
    "reviewed",
    "mark_mine",
]

log = logging.getLogger(__name__)

SCOPES = ("finding", "path", "repository")
REFERENCE_LOG = Path(".stackcoder") / "references.log"
_GITIGNORE = "# written by stackcoder: the log of accepted code that matched the index\nreferences.log\n"
_CONTEXT_TTL_S = 30.0  # the folder's license and git remotes are read again after this long


def folder_root(ls: Any, uri: str) -> Path | None:
    """The workspace folder holding a document (the innermost), else the root path, else None."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    if path is None:
        return None
    roots = [to_fs_path(f.uri) for f in (ls.workspace.folders or {}).values()]
    if ls.workspace.root_path:
        roots.append(ls.workspace.root_path)
    inside = [r for r in roots if r and (path == r or path.startswith(r.rstrip(os.sep) + os.sep))]
    return Path(max(inside, key=len)) if inside else None


@dataclass
class _Entry:
    key: tuple
    read_at: float
    context: ProjectContext


class ProjectContexts:
    """The ProjectContext of each workspace folder, read again when mine.json or the setting
    changes, and at most every few seconds otherwise."""

    def __init__(self, tell: Callable[[str, str], None] = lambda key, message: None) -> None:
        self._cache: dict[Path, _Entry] = {}
        self._lock = threading.Lock()
        self._tell = tell  # (key, message): shown to the user once per key

    def get(self, root: Path | None, mine_setting: tuple[str, ...] = ()) -> ProjectContext | None:
        """The folder's context (None for a document outside every workspace folder)."""
        if root is None:
            return None
        try:
            stamp = (root / MINE_FILE).stat().st_mtime_ns
        except OSError:
            stamp = None
        key = (stamp, mine_setting)
        with self._lock:
            entry = self._cache.get(root)
            if entry and entry.key == key and time.monotonic() - entry.read_at < _CONTEXT_TTL_S:
                return entry.context
        try:
            context = ProjectContext.of_folder(root, mine_setting)
        except MineFileError as exc:
            self._tell(f"mine:{root}:{exc}", f"{exc} Until then no code is treated as yours.")
            # the license and git remotes still count
            context = ProjectContext(detect_license(root), Ownership(root, git_identities(root)))
        with self._lock:
            self._cache[root] = _Entry(key, time.monotonic(), context)
        return context

    def forget(self, root: Path) -> None:
        """Read the folder again on next use (after mine.json was written)."""
        with self._lock:
            self._cache.pop(root, None)


def reviewed(ls: Any, uri: str) -> Callable[[str], Any]:
    """A query function for documents of ``uri``'s folder: the index's report, read for that folder."""
    root, mine = folder_root(ls, uri), tuple(ls.settings_for(uri).provenance.mine or ())

    def query(text: str) -> Any:  # runs off the event loop: reading the folder's license may take a while
        return review_report(ls.provenance.query(text), ls.projects.get(root, mine))

    return query


def rule_for(scope: str, match: dict[str, Any]) -> MineRule:
    """The mine.json entry that marks a match's ``finding``, ``path`` or ``repository`` as the user's."""
    repo = str(match.get("repo") or "")
    if not repo:
        raise ValueError("the finding names no repository; it cannot be marked as yours.")
    if scope == "repository":
        return MineRule(repo)
    path = str(match.get("path") or "")
    if not path:
        raise ValueError("the finding names no path; mark its repository instead.")
    if scope == "path":
        return MineRule(repo, path)
    if scope == "finding":
        start = int(match.get("source_start_line", 1))
        return MineRule(repo, path, (start, max(start, int(match.get("source_end_line", start)))))
    raise ValueError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}.")


def quick_fixes(uri: str, diagnostics: list[types.Diagnostic], source: str) -> list[types.CodeAction]:
    """ "This is mine" quick fixes for the provenance diagnostics among ``diagnostics``."""
    actions = []
    for diagnostic in diagnostics:
        data = diagnostic.data if isinstance(diagnostic.data, dict) else None
        match = data.get("match") if data else None
        if diagnostic.source != source or not isinstance(match, dict) or not match.get("repo"):
            continue
        repo, path = match["repo"], match.get("path") or ""
        titles = {
            "finding": f"StackCoder: this is my code (mark {path} lines "
            f"{match.get('source_start_line')}-{match.get('source_end_line')} of {repo} as mine)",
            "path": f"StackCoder: mark every match of {repo}/{path} as mine",
            "repository": f"StackCoder: mark repository {repo} as mine",
        }
        for scope, title in titles.items():
            if scope != "repository" and not path:
                continue
            actions.append(
                types.CodeAction(
                    title=title,
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    is_preferred=scope == "finding",
                    command=types.Command(title=title, command=CMD_MARK_MINE, arguments=[uri, scope, match]),
                )
            )
    return actions


def mark_mine(root: Path, rule: MineRule) -> tuple[Path, bool]:
    """Add ``rule`` to the folder's mine.json; (its path, whether it was new)."""
    path = root / MINE_FILE
    return path, add_to_mine_file(path, rule)


def reference_lines(origin: str, where: str, report: Any) -> list[str]:
    """Lines of the reference log for one piece of accepted code (one line per match)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for m in report.matches:
        d = m if isinstance(m, dict) else m.to_dict()
        fit = (d.get("license_fit") or {}).get("text") or f"license {d.get('license')}"
        out.append(
            f"{stamp} | {origin} | {where} | {d.get('kind')} {float(d.get('score', 0)):.2f} | "
            f"{d.get('repo')}/{d.get('path')} lines {d.get('source_start_line')}-{d.get('source_end_line')} | "
            f"{d.get('license')} | {fit} | {d.get('url') or 'no URL'}"
        )
    return out


def append_references(root: Path, lines: list[str]) -> Path | None:
    """Append lines to the folder's reference log (created with a .gitignore); its path, or None."""
    if not lines:
        return None
    path = root / REFERENCE_LOG
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_GITIGNORE, encoding="utf-8")
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    except OSError as exc:
        log.warning("could not write the reference log %s: %s", path, exc)
        return None
    return path


def log_references(ls: Any, uri: str, origin: str, first_line: int, text: str, report: Any) -> Path | None:
    """Append a copied report's matches to the reference log of ``uri``'s workspace folder.

    ``first_line`` is the 0-based document line where ``text`` was inserted. Reports that are not
    ``copied`` (similar or original) are not logged; nor is code outside every workspace folder.
    """
    root = folder_root(ls, uri)
    if root is None or getattr(report, "verdict", None) != "copied":
        return None
    path = to_fs_path(uri) or uri
    try:
        shown = Path(path).relative_to(root).as_posix()
    except ValueError:
        shown = path
    last = first_line + max(text.count("\n"), 0)
    return append_references(root, reference_lines(origin, f"{shown}:{first_line + 1}-{last + 1}", report))
