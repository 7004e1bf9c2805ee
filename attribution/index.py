"""Query an index: exact spans, near-duplicate chunks and BM25 hits, merged into a report.

``Index.open(path)`` memory-maps the segments (nothing is unpickled or executed) and
``Index.query(text)`` is safe to call from several threads at once: the arrays are read-only,
each thread gets its own sqlite connection and the BM25 retriever is used under a lock.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attribution.errors import AttributionError, CorruptIndexError, QueryError
from attribution.fingerprint import STREAMS, FileFingerprint, fingerprint
from attribution.lsh import RedisLSH, lsh_backend
from attribution.manifest import params_of, read_manifest
from attribution.normalize import Normalized, normalize
from attribution.remote import REMOTE_PREFIX, remote_record, signature_table
from attribution.report import Match, Report
from attribution.segment import Segment

__all__ = ["Index", "QueryConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryConfig:
    """Thresholds of the detectors and of the verdict."""

    near_threshold: float = 0.7  # exact Jaccard of a near-duplicate that counts as copied
    similar_threshold: float = 0.5  # lower Jaccard of a near candidate reported as similar
    bm25_k: int = 3  # BM25 hits looked at per segment
    bm25_min_jaccard: float = 0.25  # a BM25 hit is reported when its raw-shingle Jaccard reaches this
    max_locations: int = 32  # a window found in more places is boilerplate
    max_candidates: int = 32  # LSH candidates re-scored per query chunk and stream
    max_matches: int = 10  # matches in a report
    max_query_bytes: int = 1_000_000  # longer queries are refused
    source_cache: int = 64  # source files (split in lines) kept for span extension
    detectors: tuple[str, ...] = ("exact", "near", "bm25")  # which detectors run


_SPAN_EXTENSION_LIMIT = 4_000
REMOTE_SEGMENT = "remote"  # Match.segment of chunks published by the signature job
_REGION_PAD = 400  # normalised characters of source read around a span, for its extension
# Detector name -> the method that runs it.
_DETECTORS = {
    "exact": "_exact",
    "near": "_near",
    "bm25": "_bm25",
}  # characters a span may grow beyond its aligned windows


@dataclass
class _Candidate:
    rank: tuple
    segment: int
    file_id: int
    source: tuple[int, int]
    query: tuple[int, int]
    kind: str
    score: float
    remote: dict | None = None  # provenance of a chunk published by the signature job (no local text)

    @property
    def origin(self) -> tuple:
        """Which source file the candidate points at."""
        if self.remote is not None:
            return ("remote", self.remote["repo"], self.remote["path"])
        return (self.segment, self.file_id)


class Index:
    """An attribution index opened for queries."""

    def __init__(
        self, folder: Path, manifest: dict, segments: list[Segment], lsh: dict | None, config: QueryConfig
    ):
        self.folder = folder
        self.manifest = manifest
        self.segments = segments
        self.fp_params, self.seg_params = params_of(manifest)
        self.config = config
        self._by_name = {s.name: i for i, s in enumerate(segments)}
        self._cache: OrderedDict[tuple[int, int], list[str]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._finder = _FINDERS[lsh_backend(lsh)](self, lsh or {"type": "arrays"})

    # --- opening ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, lsh: dict | None = None, config: QueryConfig | None = None) -> Index:
        """Open an index folder.

        Args:
            path: the folder `stackcoder index build` wrote.
            lsh: LSH storage, ``{"type": "arrays"}`` (default, the folder's own buckets) or
                ``{"type": "redis", "redis": {...}, "basename": ...}`` (filled by ``publish_lsh``).
            config: detector thresholds.

        Raises:
            AttributionError: the folder is missing, partial, corrupt or of another version.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        _, seg_params = params_of(manifest)
        segments = [Segment(folder / entry["name"], seg_params) for entry in manifest["segments"]]
        return cls(folder, manifest, segments, lsh, config or QueryConfig())

    def close(self) -> None:
        """Close this thread's database connections."""
        for segment in self.segments:
            segment.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def counts(self) -> dict:
        """Files, lines, windows and chunks indexed."""
        return dict(self.manifest["counts"])

    # --- queries ------------------------------------------------------------------------------------

    def query(self, text: str | bytes, *, detectors: tuple[str, ...] | None = None) -> Report:
        """Check a text against the index.

        Args:
            text: the code to check (str, or UTF-8 bytes).
            detectors: run only these of ``"exact"``, ``"near"``, ``"bm25"`` (default: the config's).

        Raises:
            QueryError: the text is binary or larger than ``QueryConfig.max_query_bytes``.
        """
        text = self._validate(text)
        if not text.strip():
            return Report("original", [], query_text=text)
        detectors = self.config.detectors if detectors is None else detectors
        unknown = set(detectors) - set(_DETECTORS)
        if unknown:
            raise QueryError(f"unknown detector {sorted(unknown)[0]!r}; use any of: {', '.join(_DETECTORS)}.")
        fp = fingerprint(text, "query.py", self.fp_params, query=True)
        candidates: list[_Candidate] = []
        for name in detectors:
            candidates += getattr(self, _DETECTORS[name])(fp)
        return self._report(text, candidates)

    def _validate(self, text: str | bytes) -> str:
        if isinstance(text, bytes):
            if b"\x00" in text:
                raise QueryError("the query is binary data (NUL bytes); pass source code text.")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise QueryError("the query is not UTF-8 text; pass source code text.") from exc
        if not isinstance(text, str):
            raise QueryError(f"the query must be text, not {type(text).__name__}; pass a str.")
        if "\x00" in text:
            raise QueryError("the query is binary data (NUL characters); pass source code text.")
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > self.config.max_query_bytes:
            raise QueryError(
                f"the query is {size} bytes, over the {self.config.max_query_bytes}-byte limit; "
                "check a smaller piece of code."
            )
        return text

    def _source_lines(self, segment: int, file_id: int) -> list[str]:
        key = (segment, file_id)
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        lines = self.segments[segment].file_content(file_id).splitlines()
        with self._cache_lock:
            self._cache[key] = lines
            while len(self._cache) > self.config.source_cache:
                self._cache.popitem(last=False)
        return lines

    def _source_region(self, segment: int, file_id: int, start: int, end: int) -> tuple[Normalized, int, int]:
        """The normalised source around offsets ``[start, end)``: ``(text, its offset, its first line - 1)``.

        Only the lines near the span are normalised, located through the stored line offsets.
        """
        starts = self.segments[segment].line_starts(file_id)
        first = max(0, int(np.searchsorted(starts, max(0, start - _REGION_PAD), side="right")) - 1)
        last = min(len(starts) - 2, int(np.searchsorted(starts, end + _REGION_PAD, side="right")) - 1)
        lines = self._source_lines(segment, file_id)
        return normalize("\n".join(lines[first : last + 1])), int(starts[first]), first

    def _exact(self, fp: FileFingerprint) -> list[_Candidate]:
        assert fp.normalized is not None
        query = fp.normalized
        window = self.fp_params.window
        out: list[_Candidate] = []
        for seg_index, segment in enumerate(self.segments):
            q_index, files, offsets = segment.window_hits(fp.window_hashes, self.config.max_locations)
            if len(q_index) == 0:
                continue
            diagonal = offsets - q_index
            order = np.lexsort((q_index, diagonal, files))
            spans: list[tuple[int, int, int, int]] = []  # file, query start, query end, source start
            start = prev = int(q_index[order[0]])
            cur_file, cur_diag = int(files[order[0]]), int(diagonal[order[0]])
            for k in order[1:]:
                q, f, d = int(q_index[k]), int(files[k]), int(diagonal[k])
                if f == cur_file and d == cur_diag and q - prev <= window:
                    prev = q
                    continue
                spans.append((cur_file, start, prev + window, start + cur_diag))
                start = prev = q
                cur_file, cur_diag = f, d
            spans.append((cur_file, start, prev + window, start + cur_diag))
            # Only the longest spans can make it into a report: extend just those.
            spans.sort(key=lambda span: span[1] - span[2])
            for file_id, q_start, q_end, s_start in spans[: 3 * self.config.max_matches]:
                s_end = s_start + (q_end - q_start)
                source, base, first_line = self._source_region(seg_index, file_id, s_start, s_end)
                q_start, q_end, s_start, s_end = _extend(
                    query.text, source.text, q_start, q_end, s_start - base
                )
                if s_end > len(source.text) or s_start < 0:
                    raise CorruptIndexError(
                        f"the line offsets of {self.segments[seg_index].folder} disagree with its files; rebuild the index."
                    )
                lo, hi = source.line_range(s_start, s_end)
                out.append(
                    _Candidate(
                        rank=(0, -(q_end - q_start)),
                        segment=seg_index,
                        file_id=file_id,
                        source=(lo + first_line, hi + first_line),
                        query=query.line_range(q_start, q_end),
                        kind="exact",
                        score=(q_end - q_start) / max(1, len(query.text)),
                    )
                )
        return out

    def _near(self, fp: FileFingerprint) -> list[_Candidate]:
        best: dict[tuple, tuple[float, str]] = {}
        for stream in STREAMS:
            sets = fp.streams[stream]
            minimum = self.seg_params.min_shingles[stream]
            for c in range(len(fp.chunk_starts)):
                full = sets.of(c)
                if len(full) < minimum:
                    continue
                found, remote = self._finder.candidates(
                    stream, sets.signatures[c], self.config.max_candidates
                )
                for key_bytes, signature in remote:
                    # Only the signature left the cluster: the share of equal MinHash values
                    # estimates the Jaccard similarity.
                    estimate = float(np.mean(signature == sets.signatures[c]))
                    key = ("remote", key_bytes, c)
                    if estimate >= self.config.similar_threshold and estimate > best.get(key, (0.0, ""))[0]:
                        best[key] = (estimate, stream)
                for seg_index, chunk_ids in found.items():
                    segment = self.segments[seg_index]
                    mine = segment.informative(stream, full)
                    if len(mine) < minimum:
                        continue
                    for chunk_id in chunk_ids:
                        theirs = segment.chunk_set(stream, int(chunk_id))
                        shared = np.intersect1d(mine, theirs, assume_unique=True).size
                        jaccard = shared / (len(mine) + len(theirs) - shared)
                        key = (seg_index, int(chunk_id), c)
                        if jaccard >= self.config.similar_threshold and jaccard > best.get(key, (0.0, ""))[0]:
                            best[key] = (jaccard, stream)
        out = []
        for (seg_index, chunk_id, c), (jaccard, _stream) in best.items():
            copied = jaccard >= self.config.near_threshold
            if seg_index == "remote":
                record = remote_record(chunk_id)
                out.append(
                    _Candidate(
                        rank=(1 if copied else 2, -jaccard),
                        segment=-1,
                        file_id=-1,
                        source=(int(record["start_line"]), int(record["end_line"])),
                        query=(int(fp.chunk_starts[c]), int(fp.chunk_ends[c])),
                        kind="near",
                        score=jaccard,
                        remote=record,
                    )
                )
                continue
            segment = self.segments[seg_index]
            out.append(
                _Candidate(
                    rank=(1 if copied else 2, -jaccard),
                    segment=seg_index,
                    file_id=int(segment.chunk_file[chunk_id]),
                    source=(int(segment.chunk_start[chunk_id]), int(segment.chunk_end[chunk_id])),
                    query=(int(fp.chunk_starts[c]), int(fp.chunk_ends[c])),
                    kind="near",
                    score=jaccard,
                )
            )
        return out

    def _bm25(self, fp: FileFingerprint) -> list[_Candidate]:
        words = [w for chunk in fp.bm25 for w in chunk]
        if not words:
            return []
        raw = fp.streams["raw"]
        whole = np.unique(raw.hashes)
        out = []
        for seg_index, segment in enumerate(self.segments):
            mine = segment.informative("raw", whole)
            if len(mine) == 0:
                continue
            for chunk_id, score in segment.bm25_search(words, self.config.bm25_k):
                theirs = segment.chunk_set("raw", chunk_id)
                shared = np.intersect1d(mine, theirs, assume_unique=True).size
                if shared / max(1, len(mine) + len(theirs) - shared) < self.config.bm25_min_jaccard:
                    continue
                out.append(
                    _Candidate(
                        rank=(3, -score),
                        segment=seg_index,
                        file_id=int(segment.chunk_file[chunk_id]),
                        source=(int(segment.chunk_start[chunk_id]), int(segment.chunk_end[chunk_id])),
                        query=(1, fp.n_lines),
                        kind="bm25",
                        score=score,
                    )
                )
        return out

    def _report(self, text: str, candidates: list[_Candidate]) -> Report:
        candidates.sort(key=lambda c: c.rank)
        kept: list[_Candidate] = []
        for cand in candidates:
            if any(_overlaps(cand, other) for other in kept):
                continue
            kept.append(cand)
            if len(kept) >= self.config.max_matches:
                break
        copied = any(
            c.kind == "exact" or (c.kind == "near" and c.score >= self.config.near_threshold) for c in kept
        )
        verdict = "copied" if copied else ("similar" if kept else "original")
        matches = []
        for cand in kept:
            if cand.remote is not None:
                matches.append(_remote_match(cand))
                continue
            segment = self.segments[cand.segment]
            record = segment.file_record(cand.file_id)
            matches.append(
                _match(cand, record.repo, record.path, record.license, record.url, segment.name, cand.file_id)
            )
        return Report(verdict, matches, query_text=text, source_loader=self.source_text)

    def source_text(self, match: Match) -> str:
        """The lines of the indexed source a match points at."""
        if match.segment == REMOTE_SEGMENT:
            return "(published signature: the source text is not stored here)"
        seg_index = self._by_name.get(match.segment)
        if seg_index is None or match.file_id < 0:
            raise AttributionError("this match does not come from this index; query the index it came from.")
        lines = self.segments[seg_index].file_content(match.file_id).splitlines()
        return "\n".join(lines[match.source_start_line - 1 : match.source_end_line])

    # --- Redis -------------------------------------------------------------------------------------

    def publish_lsh(self, config: dict, progress: bool = False) -> int:
        """Insert the chunk signatures of every segment into a shared LSH storage (Redis).

        Returns the number of (chunk, stream) keys inserted.
        """
        if lsh_backend(config) != "redis":
            raise AttributionError(
                "only a redis LSH storage can be published to; pass {'type': 'redis', ...}."
            )
        total = 0
        for stream in STREAMS:
            store = _redis_store(self, config, stream)
            for segment in self.segments:
                sizes = np.diff(np.asarray(segment.offsets[stream]))
                eligible = np.flatnonzero(sizes >= self.seg_params.min_shingles[stream])
                signatures = np.load(segment.folder / f"{stream}_signatures.npy", mmap_mode="r")
                keys = (f"{segment.name}:{i}".encode() for i in eligible)
                store.insert_many(keys, np.asarray(signatures[eligible]))
                total += len(eligible)
        return total


def _extend(query: str, source: str, q_start: int, q_end: int, s_start: int) -> tuple[int, int, int, int]:
    """Grow a span of equal characters to the left and right of its aligned windows."""
    s_end = s_start + (q_end - q_start)
    limit = _SPAN_EXTENSION_LIMIT
    while limit and q_start > 0 and s_start > 0 and query[q_start - 1] == source[s_start - 1]:
        q_start -= 1
        s_start -= 1
        limit -= 1
    limit = _SPAN_EXTENSION_LIMIT
    while limit and q_end < len(query) and s_end < len(source) and query[q_end] == source[s_end]:
        q_end += 1
        s_end += 1
        limit -= 1
    return q_start, q_end, s_start, s_end


def _remote_match(cand: _Candidate) -> Match:
    record = cand.remote or {}
    return _match(
        cand,
        str(record.get("repo", "")),
        str(record.get("path", "")),
        str(record.get("license") or "unknown"),
        record.get("url"),
        REMOTE_SEGMENT,
    )


def _match(
    cand: _Candidate, repo: str, path: str, license: str, url: str | None, segment: str, file_id: int = -1
) -> Match:
    """The reported match of a candidate, with the provenance of its source."""
    return Match(
        repo=repo,
        path=path,
        license=license,
        url=url,
        source_start_line=cand.source[0],
        source_end_line=cand.source[1],
        query_start_line=cand.query[0],
        query_end_line=cand.query[1],
        kind=cand.kind,
        score=float(cand.score),
        segment=segment,
        file_id=file_id,
    )


def _overlaps(a: _Candidate, b: _Candidate) -> bool:
    """Same file, and the source ranges and query ranges overlap: the lesser one is a duplicate."""
    return (
        a.origin == b.origin
        and a.source[0] <= b.source[1]
        and b.source[0] <= a.source[1]
        and a.query[0] <= b.query[1]
        and b.query[0] <= a.query[1]
    )


# --- candidate finders: the index's own LSH arrays, or datasketch's MinHashLSH in Redis ----------


class _ArrayFinder:
    def __init__(self, index: Index, config: dict) -> None:
        self.segments = index.segments

    def candidates(
        self, stream: str, signature: np.ndarray, limit: int
    ) -> tuple[dict[int, np.ndarray], list]:
        """Chunk ids per segment, and ``(key, signature)`` of remote chunks (none here)."""
        out = {}
        for i, segment in enumerate(self.segments):
            ids = segment.lsh[stream].candidates(signature, limit)
            if len(ids):
                out[i] = ids
        return out, []


def _redis_store(index: Index, config: dict, stream: str) -> RedisLSH:
    basename = config.get("basename", b"stackcoder")
    basename = basename if isinstance(basename, bytes) else str(basename).encode()
    return RedisLSH(
        {**config, "basename": basename + b"_" + stream.encode()},
        index.seg_params.bands,
        index.seg_params.rows,
        index.fp_params.num_perm,
        index.fp_params.seed,
    )


class _RedisFinder:
    def __init__(self, index: Index, config: dict) -> None:
        self.by_name = {s.name: i for i, s in enumerate(index.segments)}
        import redis

        self.stores = {stream: _redis_store(index, config, stream) for stream in STREAMS}
        self.client = redis.Redis(**config["redis"])
        basename = config.get("basename", b"stackcoder")
        self.basename = basename if isinstance(basename, bytes) else str(basename).encode()
        if all(store.is_empty() for store in self.stores.values()) and index.segments:
            raise AttributionError(
                "the Redis LSH storage holds no signatures yet; publish them with `stackcoder index publish-lsh`."
            )

    def candidates(
        self, stream: str, signature: np.ndarray, limit: int
    ) -> tuple[dict[int, np.ndarray], list]:
        """Chunk ids per segment, and ``(key, signature)`` of chunks published remotely (the key
        carries their provenance, see :func:`attribution.remote.remote_record`)."""
        grouped: dict[int, list[int]] = {}
        remote_keys = []
        for key in self.stores[stream].query_keys(signature):
            if key.startswith(REMOTE_PREFIX):
                remote_keys.append(key)
                continue
            name, _, chunk = key.decode().partition(":")
            if name in self.by_name and chunk.isdigit():
                grouped.setdefault(self.by_name[name], []).append(int(chunk))
        remote = []
        if remote_keys:
            remote_keys = sorted(remote_keys)[:limit]
            values = self.client.hmget(signature_table(self.basename, stream), remote_keys)
            for key, value in zip(remote_keys, values, strict=True):
                if value is not None:
                    remote.append((key, np.frombuffer(value, dtype="<u4")))
        local = {i: np.asarray(sorted(ids)[:limit], dtype=np.int64) for i, ids in grouped.items()}
        return local, remote


_FINDERS: dict[str, Callable[[Index, dict], object]] = {"arrays": _ArrayFinder, "redis": _RedisFinder}
