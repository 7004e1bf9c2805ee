"""One segment of an index: the files added by one build, stored without pickle.

A segment folder holds ``meta.sqlite`` (files: repository, path, license, URL, text), ``.npy``
arrays (exact-span windows, chunks, shingle sets, signatures, LSH buckets; memory-mapped when
read), ``bm25/`` in bm25s's own json + npy format, and ``segment.json`` — written last — with
the byte size of every other file, so a partial or truncated segment is refused when opened.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attribution.bm25_index import WordVocabulary, save_bm25
from attribution.errors import CorruptIndexError
from attribution.fingerprint import STREAMS, FileFingerprint
from attribution.key_table import KeyTable
from attribution.lsh import ArrayLSH
from attribution.sources import SourceFile

__all__ = ["SegmentParams", "SegmentWriter", "Segment", "FileRecord", "SEGMENT_META"]

SEGMENT_META = "segment.json"
_SCHEMA = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    repo TEXT NOT NULL,
    path TEXT NOT NULL,
    license TEXT NOT NULL,
    url TEXT,
    n_lines INTEGER NOT NULL,
    digest TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX files_repo_path ON files (repo, path);
"""


@dataclass(frozen=True)
class SegmentParams:
    """Parameters of the stored structures (recorded in the manifest)."""

    bands: int  # LSH bands
    rows: int  # LSH rows per band
    # Chunks with fewer informative shingles than this are too generic to be searched.
    min_shingles: dict[str, int] = field(default_factory=lambda: {"raw": 20, "norm": 25})
    # A shingle found in more chunks than this share of the segment (and than common_min_df) is
    # boilerplate: it is dropped from the sets used for exact re-scoring. Identifier-normalised
    # shingles are generic by nature, so their bar is higher.
    common_fraction: dict[str, float] = field(default_factory=lambda: {"raw": 0.002, "norm": 0.03})
    common_min_df: int = 20


@dataclass(frozen=True)
class FileRecord:
    """Metadata of an indexed file."""

    repo: str
    path: str
    license: str
    url: str | None
    n_lines: int


class SegmentWriter:
    """Accumulates fingerprints of files and writes a segment folder."""

    def __init__(self, folder: Path, params: SegmentParams) -> None:
        self.folder = folder
        self.params = params
        folder.mkdir(parents=True, exist_ok=False)
        self.db = sqlite3.connect(folder / "meta.sqlite")
        self.db.executescript(_SCHEMA)
        self._rows: list[tuple] = []
        self.n_files = 0
        self.n_lines = 0
        self._line_offsets: list[np.ndarray] = []
        self._win_hash: list[np.ndarray] = []
        self._win_file: list[np.ndarray] = []
        self._win_off: list[np.ndarray] = []
        self._chunk_file: list[np.ndarray] = []
        self._chunk_start: list[np.ndarray] = []
        self._chunk_end: list[np.ndarray] = []
        self._sets: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {s: [] for s in STREAMS}
        self._words = WordVocabulary()
        self._bm25_ids: list[np.ndarray] = []
        self._bm25_lengths: list[np.ndarray] = []

    def add(self, source: SourceFile, fp: FileFingerprint, digest: str) -> None:
        """Add one file and its fingerprint."""
        file_id = self.n_files
        self.n_files += 1
        self.n_lines += fp.n_lines
        self._rows.append(
            (
                file_id,
                source.repo,
                source.path,
                source.license,
                source.url,
                fp.n_lines,
                digest,
                source.content,
            )
        )
        if len(self._rows) >= 512:
            self._flush_rows()
        self._line_offsets.append(fp.line_offsets)
        self._win_hash.append(fp.window_hashes)
        self._win_off.append(fp.window_offsets)
        self._win_file.append(np.full(len(fp.window_hashes), file_id, dtype=np.uint32))
        n_chunks = len(fp.chunk_starts)
        self._chunk_file.append(np.full(n_chunks, file_id, dtype=np.uint32))
        self._chunk_start.append(fp.chunk_starts)
        self._chunk_end.append(fp.chunk_ends)
        for stream in STREAMS:
            sets = fp.streams[stream]
            self._sets[stream].append((sets.hashes, np.diff(sets.offsets), sets.signatures))
        self._bm25_ids.append(self._words.map(fp.bm25_words)[fp.bm25_ids])
        self._bm25_lengths.append(np.diff(fp.bm25_bounds))

    def _flush_rows(self) -> None:
        self.db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._rows)
        self._rows.clear()

    def _save(self, name: str, array: np.ndarray) -> None:
        np.save(self.folder / name, np.ascontiguousarray(array), allow_pickle=False)

    def finish(self, num_perm: int) -> dict:
        """Write every structure and ``segment.json``; returns the segment's counts."""
        self._flush_rows()
        self.db.commit()
        self.db.close()
        n_chunks = sum(len(c) for c in self._chunk_file)
        # The structures are independent: numpy and the compiled kernels release the GIL, so
        # threads build them side by side.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            tasks = [pool.submit(self._finish_windows), pool.submit(self._finish_lines_and_chunks)]
            streams = {s: pool.submit(self._finish_stream, s, n_chunks, num_perm) for s in STREAMS}
            tasks.append(pool.submit(self._finish_bm25, n_chunks))
            n_windows = tasks[0].result()
            for task in tasks[1:]:
                task.result()
            counts = {"files": self.n_files, "lines": self.n_lines, "windows": n_windows, "chunks": n_chunks}
            for stream, task in streams.items():
                counts[f"{stream}_lsh_chunks"] = task.result()
        sizes = {
            p.relative_to(self.folder).as_posix(): p.stat().st_size
            for p in sorted(self.folder.rglob("*"))
            if p.is_file()
        }
        meta = {"counts": counts, "file_sizes": sizes}
        (self.folder / SEGMENT_META).write_text(json.dumps(meta, indent=1))
        return counts

    def _finish_windows(self) -> int:
        """Write the exact-span windows sorted by hash; returns their number."""
        hashes = np.concatenate(self._win_hash) if self._win_hash else np.empty(0, np.uint64)
        order = np.argsort(hashes, kind="stable")
        self._save("windows_hash.npy", hashes[order])
        self._save(
            "windows_file.npy",
            (np.concatenate(self._win_file) if self._win_file else np.empty(0, np.uint32))[order],
        )
        self._save(
            "windows_offset.npy",
            (np.concatenate(self._win_off) if self._win_off else np.empty(0, np.uint32))[order],
        )
        return int(len(hashes))

    def _finish_lines_and_chunks(self) -> None:
        file_lines = np.zeros(self.n_files + 1, dtype=np.int64)
        np.cumsum([len(o) for o in self._line_offsets], out=file_lines[1:])
        self._save("file_lines.npy", file_lines)
        self._save(
            "line_offsets.npy",
            np.concatenate(self._line_offsets) if self._line_offsets else np.empty(0, np.uint32),
        )
        self._save(
            "chunk_file.npy",
            np.concatenate(self._chunk_file) if self._chunk_file else np.empty(0, np.uint32),
        )
        self._save(
            "chunk_start.npy",
            np.concatenate(self._chunk_start) if self._chunk_start else np.empty(0, np.int32),
        )
        self._save(
            "chunk_end.npy", np.concatenate(self._chunk_end) if self._chunk_end else np.empty(0, np.int32)
        )

    def _finish_bm25(self, n_chunks: int) -> None:
        if not n_chunks:
            return
        ids = np.concatenate(self._bm25_ids)
        lengths = np.concatenate(self._bm25_lengths)
        words = self._words.words
        if not len(ids):  # no chunk has a word: one placeholder word each, as bm25s needs a vocabulary
            ids, lengths, words = np.zeros(n_chunks, np.int32), np.ones(n_chunks, np.int64), ["_"]
        save_bm25(self.folder / "bm25", ids, lengths, words)

    def _finish_stream(self, stream: str, n_chunks: int, num_perm: int) -> int:
        parts = self._sets[stream]
        flat = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.uint32)
        sizes = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
        sigs = np.concatenate([p[2] for p in parts]) if parts else np.empty((0, num_perm), np.uint32)
        # Boilerplate shingles: in more chunks than the threshold; drop them from the stored sets.
        values, df = np.unique(flat, return_counts=True)
        limit = max(self.params.common_min_df, int(self.params.common_fraction[stream] * max(n_chunks, 1)))
        common = values[df > limit]
        owner = np.repeat(np.arange(n_chunks), sizes)
        # ``common`` is small: one hash-table probe per shingle beats a binary search or a sort.
        keep = np.ones(len(flat), dtype=bool)
        if len(common):
            table = KeyTable()
            table.add(common.astype(np.uint64), np.arange(len(common)))
            keep = table.find(flat.astype(np.uint64)) < 0
        informative = flat[keep]
        inf_sizes = np.bincount(owner[keep], minlength=n_chunks)
        offsets = np.zeros(n_chunks + 1, dtype=np.int64)
        np.cumsum(inf_sizes, out=offsets[1:])
        self._save(f"{stream}_common.npy", common.astype(np.uint32))
        self._save(f"{stream}_shingles.npy", informative.astype(np.uint32))
        self._save(f"{stream}_offsets.npy", offsets)
        self._save(f"{stream}_signatures.npy", sigs.astype(np.uint32))
        eligible = np.flatnonzero(inf_sizes >= self.params.min_shingles[stream]).astype(np.uint32)
        lsh = ArrayLSH.build(sigs[eligible], eligible, self.params.bands, self.params.rows)
        lsh.save(self.folder / stream)
        return int(len(eligible))


class Segment:
    """A segment opened for queries: arrays memory-mapped, sqlite read-only per thread."""

    def __init__(self, folder: Path, params: SegmentParams) -> None:
        self.folder = folder
        self.name = folder.name
        meta_path = folder / SEGMENT_META
        try:
            meta = json.loads(meta_path.read_text())
            sizes = meta["file_sizes"]
            self.counts = meta["counts"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptIndexError(
                f"index segment {folder} is incomplete or damaged ({exc.__class__.__name__}); rebuild the index."
            ) from exc
        for name, size in sizes.items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != size:
                raise CorruptIndexError(
                    f"index file {path} is missing or truncated; rebuild the index with `stackcoder index build`."
                )
        try:
            load = self._load
            self.win_hash = load("windows_hash.npy")
            self.win_file = load("windows_file.npy")
            self.win_off = load("windows_offset.npy")
            self.file_lines = load("file_lines.npy")
            self.line_offsets = load("line_offsets.npy")
            self.chunk_file = load("chunk_file.npy")
            self.chunk_start = load("chunk_start.npy")
            self.chunk_end = load("chunk_end.npy")
            self.shingles = {s: load(f"{s}_shingles.npy") for s in STREAMS}
            self.offsets = {s: load(f"{s}_offsets.npy") for s in STREAMS}
            self.common = {s: load(f"{s}_common.npy") for s in STREAMS}
            self.lsh = {s: ArrayLSH.load(folder / s, params.bands, params.rows) for s in STREAMS}
            self._check_shapes()
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(f"index segment {folder} is damaged ({exc}); rebuild the index.") from exc
        self.bm25 = None
        self._bm25_vocab: dict[str, int] = {}
        if (folder / "bm25").is_dir():
            import bm25s

            try:
                self.bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=True, allow_pickle=False)
            except Exception as exc:  # bm25s raises json/numpy errors on damaged files
                raise CorruptIndexError(
                    f"the BM25 index in {folder} is damaged ({exc}); rebuild the index."
                ) from exc
            self._bm25_vocab = self.bm25.vocab_dict
        self._bm25_lock = threading.Lock()
        self._local = threading.local()

    def _load(self, name: str) -> np.ndarray:
        # A plain ndarray view of the memory map: slicing it is cheaper than slicing a np.memmap.
        return np.asarray(np.load(self.folder / name, mmap_mode="r", allow_pickle=False))

    def _check_shapes(self) -> None:
        n_chunks = len(self.chunk_file)
        if not (len(self.win_hash) == len(self.win_file) == len(self.win_off)):
            raise ValueError("window arrays disagree in length")
        if len(self.file_lines) == 0 or self.file_lines[-1] != len(self.line_offsets):
            raise ValueError("line offsets disagree with the file table")
        if not (n_chunks == len(self.chunk_start) == len(self.chunk_end)):
            raise ValueError("chunk arrays disagree in length")
        for s in STREAMS:
            if len(self.offsets[s]) != n_chunks + 1 or (
                n_chunks and self.offsets[s][-1] != len(self.shingles[s])
            ):
                raise ValueError(f"{s} shingle offsets disagree with the shingles")

    # --- sqlite ----------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{(self.folder / 'meta.sqlite').as_posix()}?mode=ro"
            try:
                db = sqlite3.connect(uri, uri=True)
                db.execute("SELECT count(*) FROM files").fetchone()
            except sqlite3.DatabaseError as exc:
                raise CorruptIndexError(
                    f"the file table of {self.folder} is damaged ({exc}); rebuild the index."
                ) from exc
            self._local.db = db
        return db

    def file_record(self, file_id: int) -> FileRecord:
        """Repository, path, license, URL and line count of a file."""
        row = (
            self._db()
            .execute("SELECT repo, path, license, url, n_lines FROM files WHERE id = ?", (int(file_id),))
            .fetchone()
        )
        if row is None:
            raise CorruptIndexError(f"file {file_id} is missing from {self.folder}; rebuild the index.")
        return FileRecord(*row)

    def file_content(self, file_id: int) -> str:
        """The indexed text of a file."""
        row = self._db().execute("SELECT content FROM files WHERE id = ?", (int(file_id),)).fetchone()
        if row is None:
            raise CorruptIndexError(f"file {file_id} is missing from {self.folder}; rebuild the index.")
        return row[0]

    def digests(self) -> set[tuple[str, str, str]]:
        """``(repo, path, digest)`` of every file, to skip files already indexed."""
        return set(self._db().execute("SELECT repo, path, digest FROM files").fetchall())

    # --- detectors -------------------------------------------------------------------------------

    def window_hits(
        self, hashes: np.ndarray, max_locations: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For query window hashes: ``(query index, file id, source offset)`` of every hit.

        Windows found in more than ``max_locations`` places are boilerplate and not reported.
        """
        if len(self.win_hash) == 0 or len(hashes) == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        # Sorted needles keep the binary searches cache-friendly; most windows miss, so the
        # right bound is only searched for the hits.
        order = np.argsort(hashes, kind="stable")
        needles = hashes[order]
        lo_sorted = np.searchsorted(self.win_hash, needles, side="left")
        inside = lo_sorted < len(self.win_hash)
        found = np.zeros(len(needles), dtype=bool)
        found[inside] = self.win_hash[lo_sorted[inside]] == needles[inside]
        if not found.any():
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        hi_sorted = lo_sorted.copy()
        hi_sorted[found] = np.searchsorted(self.win_hash, needles[found], side="right")
        lo = np.empty_like(lo_sorted)
        hi = np.empty_like(hi_sorted)
        lo[order] = lo_sorted
        hi[order] = hi_sorted
        counts = hi - lo
        hit = np.flatnonzero((counts > 0) & (counts <= max_locations))
        if len(hit) == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        reps = counts[hit]
        q_index = np.repeat(hit, reps)
        starts = np.repeat(lo[hit], reps)
        within = np.arange(len(q_index)) - np.repeat(np.cumsum(reps) - reps, reps)
        positions = starts + within
        return (
            q_index,
            np.asarray(self.win_file[positions], dtype=np.int64),
            np.asarray(self.win_off[positions], dtype=np.int64),
        )

    def line_starts(self, file_id: int) -> np.ndarray:
        """Normalised offset at which each line of a file starts (``n_lines + 1`` entries)."""
        return self.line_offsets[self.file_lines[file_id] : self.file_lines[file_id + 1]]

    def chunk_set(self, stream: str, chunk_id: int) -> np.ndarray:
        """The informative shingle set of a chunk."""
        offsets = self.offsets[stream]
        return np.asarray(self.shingles[stream][offsets[chunk_id] : offsets[chunk_id + 1]])

    def informative(self, stream: str, shingles: np.ndarray) -> np.ndarray:
        """A query set without this segment's boilerplate shingles."""
        common = self.common[stream]
        if len(common) == 0:
            return shingles
        # ``common`` is sorted (np.unique): a binary search per query shingle beats np.isin,
        # which would sort the whole boilerplate array on every call.
        at = np.minimum(np.searchsorted(common, shingles), len(common) - 1)
        return shingles[common[at] != shingles]

    def bm25_search(self, words: list[str], k: int) -> list[tuple[int, float]]:
        """Top-``k`` chunks by BM25 for a bag of words: ``(chunk id, score)``."""
        if self.bm25 is None:
            return []
        known = sorted({w for w in words if w in self._bm25_vocab})
        if not known:
            return []
        with self._bm25_lock:
            k = min(k, len(self.chunk_file))
            docs, scores = self.bm25.retrieve([known], k=k, show_progress=False, n_threads=0)
        return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def close(self) -> None:
        """Close this thread's sqlite connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
