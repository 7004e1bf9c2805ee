"""Build or extend an index: ingest SOURCEs, fingerprint files in worker processes, write a segment.

A new index folder is written as a whole under a temporary name and renamed into place; adding
SOURCEs to an existing index writes one more segment (files already indexed, same repository,
path and content, are skipped) and then replaces the manifest, so nothing already indexed is
processed again and an interrupted build leaves the previous index intact.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from attribution import kernels
from attribution.errors import IndexExistsError
from attribution.fingerprint import FileFingerprint, FingerprintParams, fingerprint
from attribution.lsh import optimal_bands
from attribution.manifest import MANIFEST, new_manifest, params_of, read_manifest, write_manifest
from attribution.segment import Segment, SegmentParams, SegmentWriter
from attribution.sources import SkipStats, SourceFile, iter_source_files

__all__ = ["BuildConfig", "BuildResult", "build_index", "CANDIDATE_THRESHOLD"]

log = logging.getLogger(__name__)

# LSH banding is tuned for this Jaccard (datasketch's optimiser) so that chunks at the 0.7
# verdict threshold become candidates with ~99% probability; exact re-scoring then decides.
CANDIDATE_THRESHOLD = 0.5


@dataclass
class BuildConfig:
    """Options of `stackcoder index build`."""

    max_bytes: int = 1_000_000  # larger files are skipped
    extensions: list[str] | None = None  # keep only these extensions (None: every text file)
    workers: int = 0  # fingerprinting processes (0: one per CPU core, 1: in this process)
    progress: bool = True  # show a tqdm bar
    fingerprint: FingerprintParams = field(default_factory=FingerprintParams)


@dataclass
class BuildResult:
    """What a build added."""

    index: Path
    files: int
    lines: int
    chunks: int
    seconds: float
    skipped: SkipStats

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0


# Files per worker task: large enough that sending texts and fingerprints between processes
# costs little beside the work, small enough that both cores stay busy to the end.
_BATCH_FILES = 24


def _work(batch: list[tuple[str, str]], params: FingerprintParams) -> list[FileFingerprint]:
    return [fingerprint(content, path, params) for content, path in batch]


def _digest(content: str) -> str:
    return xxhash.xxh3_128_hexdigest(content.encode("utf-8", errors="surrogatepass"))


def _batches(files: Iterator[SourceFile], size: int) -> Iterator[list[SourceFile]]:
    batch: list[SourceFile] = []
    for source in files:
        batch.append(source)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _fingerprints(
    files: Iterator[SourceFile], params: FingerprintParams, workers: int
) -> Iterator[tuple[SourceFile, FileFingerprint]]:
    """Fingerprints in input order; with several workers, batches of files go to a process pool."""
    if workers <= 1:
        for source in files:
            yield source, fingerprint(source.content, source.path, params)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "fork":
        kernels.warm_up()  # forked workers inherit the loaded kernels instead of loading them each
    context = multiprocessing.get_context(method)
    pending: deque[tuple[list[SourceFile], Future]] = deque()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for batch in _batches(files, _BATCH_FILES):
            items = [(source.content, source.path) for source in batch]
            pending.append((batch, pool.submit(_work, items, params)))
            # A bounded number of batches in flight keeps memory flat on corpora of any size.
            while len(pending) > 2 * workers:
                yield from _drain(pending.popleft())
        while pending:
            yield from _drain(pending.popleft())


def _drain(entry: tuple[list[SourceFile], Future]) -> Iterator[tuple[SourceFile, FileFingerprint]]:
    batch, future = entry
    yield from zip(batch, future.result(), strict=True)


def build_index(
    sources: Iterable[str | Path], out: str | Path, config: BuildConfig | None = None
) -> BuildResult:
    """Index SOURCEs into ``out`` (a new index, or one more segment of an existing one).

    Raises:
        SourceError: a SOURCE is missing or of an unknown kind.
        IndexExistsError: ``out`` exists and holds something other than an index.
        IndexVersionError / CorruptIndexError: the existing index cannot be extended.
    """
    config = config or BuildConfig()
    out = Path(out)
    sources = [Path(s) for s in sources]
    existing = out.is_dir() and (out / MANIFEST).exists()
    if existing:
        manifest = read_manifest(out)
        fp_params, seg_params = params_of(manifest)
        work_root = out
    else:
        if out.exists() and (not out.is_dir() or any(p for p in out.iterdir() if not p.name.startswith("."))):
            raise IndexExistsError(
                f"{out} exists and is not an index; choose a new or empty folder for --out."
            )
        fp_params = config.fingerprint
        bands, rows = optimal_bands(CANDIDATE_THRESHOLD, fp_params.num_perm)
        seg_params = SegmentParams(bands=bands, rows=rows)
        manifest = new_manifest(fp_params, seg_params)
        out.parent.mkdir(parents=True, exist_ok=True)
        work_root = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    seen: set[tuple[str, str, str]] = set()
    for entry in manifest["segments"]:
        segment = Segment(out / entry["name"], seg_params)
        seen |= segment.digests()
        segment.close()

    name = f"seg-{len(manifest['segments']):05d}"
    tmp_segment = work_root / f".{name}.tmp"
    shutil.rmtree(tmp_segment, ignore_errors=True)
    stats = SkipStats()
    started = time.perf_counter()
    try:
        writer = SegmentWriter(tmp_segment, seg_params)
        files = iter_source_files(
            sources, max_bytes=config.max_bytes, extensions=config.extensions, stats=stats
        )
        workers = config.workers or (os.cpu_count() or 1)
        bar = _progress(config.progress)
        for source, fp in _fingerprints(_unseen(files, seen, stats), fp_params, workers):
            writer.add(source, fp, _digest(source.content))
            bar.update(1)
        bar.close()
        counts = writer.finish(fp_params.num_perm)
        os.replace(tmp_segment, work_root / name)
        _record_segment(manifest, name, counts, sources, stats)
        write_manifest(work_root, manifest)
        if not existing:
            if out.exists():
                out.rmdir()  # empty, checked above
            os.replace(work_root, out)
    except BaseException:
        shutil.rmtree(tmp_segment, ignore_errors=True)
        if not existing:
            shutil.rmtree(work_root, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    return BuildResult(out, counts["files"], counts["lines"], counts["chunks"], seconds, stats)


def _unseen(
    files: Iterator[SourceFile], seen: set[tuple[str, str, str]], stats: SkipStats
) -> Iterator[SourceFile]:
    for source in files:
        key = (source.repo, source.path, _digest(source.content))
        if key in seen:
            stats.counts["already-indexed"] += 1
            stats.kept -= 1
            continue
        seen.add(key)
        yield source


def _record_segment(manifest: dict, name: str, counts: dict, sources: list[Path], stats: SkipStats) -> None:
    manifest["segments"].append(
        {"name": name, "counts": counts, "sources": [str(s) for s in sources], "skipped": dict(stats.counts)}
    )
    totals = manifest["counts"]
    for key in ("files", "lines", "windows", "chunks"):
        totals[key] = sum(int(s["counts"][key]) for s in manifest["segments"])
    manifest["membership"]["false_positive_rate_per_window"] = totals["windows"] / 2.0**64


def _progress(enabled: bool):
    from tqdm import tqdm

    return tqdm(total=None, unit="file", desc="indexing", disable=not enabled, smoothing=0.1)
