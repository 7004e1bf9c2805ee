"""Check every file of a repository against an index: `stackcoder index scan PATH`.

Files are read as `index build` reads them (binary, generated, minified and over-size files are
skipped and counted) and each whole file is queried. Matches against the repository's own code
(its git remotes, ``.stackcoder/mine.json``) are left out, and each finding carries its license fit
in the repository's license (LICENSE, pyproject.toml or package.json). With ``workers > 1`` the
queries run in worker processes, each with the index memory-mapped once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.review import ProjectContext, flagged_copied, review
from attribution.sources import SkipStats, SourceFile, iter_repository

__all__ = ["ScanConfig", "ScanResult", "Finding", "scan_repository"]

_MAX_SNIPPET_LINES = 60
_BATCH = 16


@dataclass(frozen=True)
class ScanConfig:
    """What a scan looks at and how."""

    workers: int = 1  # query processes (1: in this process)
    extensions: tuple[str, ...] | None = None  # only files with these extensions; None: all text files
    max_bytes: int = 1_000_000  # larger files are skipped (as `index build` does)
    include_similar: bool = False  # also report BM25 / low-similarity hits (not only copies)
    progress: bool = True  # a tqdm progress bar on stderr
    mine: tuple[str, ...] = ()  # extra "owner/name[:path-glob]" entries counted as the user's own


@dataclass(frozen=True)
class Finding:
    """One match of one scanned file, with the texts to show side by side."""

    file: str  # path of the scanned file, relative to the repository
    match: dict[str, Any]  # report JSON of the match, with "license_fit"
    source_text: str  # the matching lines of the indexed source
    query_text: str  # the matching lines of the scanned file


@dataclass
class ScanResult:
    """Findings of a scan and its totals."""

    root: str
    index: str
    project_license: str
    files: int = 0
    skipped: SkipStats = field(default_factory=SkipStats)
    seconds: float = 0.0
    mine: int = 0  # matches left out as the user's own code
    findings: list[Finding] = field(default_factory=list)

    @property
    def files_per_second(self) -> float:
        """Scanned files per second of wall time."""
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def groups(self) -> list[tuple[tuple[str, str], list[Finding]]]:
        """Findings grouped by (source repository, license), the largest group first."""
        out: dict[tuple[str, str], list[Finding]] = {}
        for f in self.findings:
            out.setdefault((str(f.match.get("repo")), str(f.match.get("license"))), []).append(f)
        return sorted(out.items(), key=lambda item: (-len(item[1]), item[0]))

    def totals(self) -> dict[str, Any]:
        """Counts: findings, files with findings, findings per license-fit verdict."""
        by_fit: dict[str, int] = {}
        for f in self.findings:
            verdict = f.match["license_fit"]["verdict"]
            by_fit[verdict] = by_fit.get(verdict, 0) + 1
        return {
            "files": self.files,
            "skipped": self.skipped.skipped,
            "findings": len(self.findings),
            "files_with_findings": len({f.file for f in self.findings}),
            "source_repositories": len({f.match.get("repo") for f in self.findings}),
            "by_license_fit": by_fit,
            "mine": self.mine,
            "seconds": round(self.seconds, 3),
            "files_per_second": round(self.files_per_second, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON: root, index, project license, totals and the grouped findings."""
        return {
            "root": self.root,
            "index": self.index,
            "project_license": self.project_license,
            "totals": self.totals(),
            "groups": [
                {
                    "repo": repo,
                    "license": license,
                    "license_fit": findings[0].match["license_fit"],
                    "findings": [
                        {"file": f.file, **f.match, "source_text": f.source_text, "query_text": f.query_text}
                        for f in findings
                    ],
                }
                for (repo, license), findings in self.groups()
            ],
        }


# ---- the queries (in this process or in workers) ------------------------------------------------

_worker_index: Any = None


def _open_worker(index_dir: str) -> None:
    global _worker_index
    from attribution.index import Index, QueryConfig

    _worker_index = Index.open(index_dir, config=QueryConfig(max_matches=50))


def _lines(text: str, start: int, end: int) -> str:
    lines = text.splitlines()[max(start - 1, 0) : end]
    return "\n".join(lines[:_MAX_SNIPPET_LINES]) + ("\n…" if len(lines) > _MAX_SNIPPET_LINES else "")


def _query_batch(batch: list[tuple[str, str]], include_similar: bool) -> list[tuple[str, Any, list[str]]]:
    """(path, report, source texts of its matches) of each (path, content)."""
    detectors = ("exact", "near", "bm25") if include_similar else ("exact", "near")
    out = []
    for path, content in batch:
        report = _worker_index.query(content, detectors=detectors)
        if not include_similar:
            report.matches = [m for m in report.matches if flagged_copied([m.to_dict()])]
        sources = []
        for m in report.matches:
            try:
                sources.append(_lines(_worker_index.source_text(m), 1, _MAX_SNIPPET_LINES + 1))
            except Exception:
                sources.append("")
        report.source_loader = None  # not picklable, not needed any more
        report.query_text = ""
        out.append((path, report, sources))
    return out


def _batches(files: Iterable[SourceFile], size: int) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    for f in files:
        batch.append((f.path, f.content))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan_repository(root: str | Path, index_dir: str | Path, config: ScanConfig | None = None) -> ScanResult:
    """Check every file of the repository at ``root`` against the index at ``index_dir``.

    Raises:
        AttributionError: the index is missing, partial or of another version.
        SourceError: ``root`` is not a folder.
        MineFileError: the repository's ``.stackcoder/mine.json`` is malformed.
    """
    from tqdm import tqdm

    from attribution.manifest import read_manifest

    config = config or ScanConfig()
    root, index_dir = Path(root), Path(index_dir)
    read_manifest(index_dir)  # a missing or stale index fails before the walk
    context = ProjectContext.of_folder(root, config.mine)
    stats = SkipStats()
    started = time.perf_counter()
    files = list(iter_repository(root, max_bytes=config.max_bytes, extensions=config.extensions, stats=stats))
    contents = {f.path: f.content for f in files}
    result = ScanResult(str(root), str(index_dir), context.license, len(files), stats)
    bar = tqdm(total=len(files), unit="file", desc="scanning", disable=not config.progress, smoothing=0.1)
    batches = _batches(files, _BATCH)
    if config.workers <= 1:
        _open_worker(str(index_dir))
        answers: Iterable[list] = (_query_batch(b, config.include_similar) for b in batches)
        pool = None
    else:
        pool = ProcessPoolExecutor(config.workers, initializer=_open_worker, initargs=(str(index_dir),))
        answers = pool.map(_query_batch, batches, itertools.repeat(config.include_similar))
    try:
        for answer in answers:
            for path, report, sources in answer:
                _collect(result, context, path, contents[path], report, sources)
            bar.update(len(answer))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    result.seconds = time.perf_counter() - started
    return result


def _collect(
    result: ScanResult, context: ProjectContext, path: str, content: str, report: Any, sources: list[str]
) -> None:
    source_of = {id(m): s for m, s in zip(report.matches, sources, strict=True)}
    by_json = {}
    for m in report.matches:
        by_json[(m.repo, m.path, m.source_start_line, m.query_start_line)] = source_of[id(m)]
    reviewed = review(report, context)
    result.mine += reviewed["mine"]
    for m in reviewed["matches"]:
        key = (m["repo"], m["path"], m["source_start_line"], m["query_start_line"])
        result.findings.append(
            Finding(
                file=path,
                match=m,
                source_text=by_json.get(key, ""),
                query_text=_lines(content, m["query_start_line"], m["query_end_line"]),
            )
        )
