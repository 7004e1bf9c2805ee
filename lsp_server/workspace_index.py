"""Cross-file context: a retrieval index over the workspace, kept current by watchdog.

Files are chunked along their functions and classes (:mod:`attribution.chunking`), searched two
ways - BM25 over identifier sub-words (bm25s) and dense vectors in faiss
(:mod:`lsp_server.embeddings`) - and the two rankings are merged by reciprocal rank fusion. A
watcher (:mod:`lsp_server.watcher`, which never watches inside an ignored folder) re-indexes files
that are created, modified, deleted or renamed; version-control folders, virtual environments,
``node_modules``, build output, binary files and files over the size limit are skipped. The index
holds at most ``max_files`` files and ``max_total_bytes`` of text, read breadth-first (the files
nearest the top of each folder first); ``on_limit(reached, message)`` is told once when more were
left out (``reached`` is "files" or "bytes"). Files are only read, never executed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lsp_server.embeddings import Embedder
from lsp_server.imports import import_heavy
from lsp_server.watcher import FolderWatcher

if TYPE_CHECKING:
    from attribution.chunking import Chunk

__all__ = ["IndexConfig", "Hit", "WorkspaceIndex", "rrf_merge", "retrieval_tokens", "is_ignored_dir"]

log = logging.getLogger(__name__)

IGNORED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "node_modules", "__pycache__", "build",
        "dist", "out", "target", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".idea",
        ".vscode", "site-packages", ".eggs", "bower_components", ".next", ".cache",
    }
)  # fmt: skip
CODE_SUFFIXES = frozenset(
    {
        ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".java", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs",
        ".go", ".rs", ".rb", ".php", ".kt", ".scala", ".swift", ".sh", ".lua", ".r", ".jl", ".sql", ".md",
        ".toml", ".yaml", ".yml", ".json",
    }
)  # fmt: skip
RRF_K = 60
BACKGROUND_NICE = 10  # niceness of the indexing threads (Linux threads can be reniced one by one)
EMBED_BATCH = 64  # chunks embedded per call (the stop flag is checked between calls)
MAX_CHUNK_LINES = 60  # longer functions and classes are cut into windows (prompts and embeddings stay short)


@dataclass(frozen=True)
class IndexConfig:
    """Which files the workspace index reads and how many results it returns."""

    max_file_bytes: int = 512_000  # larger files are skipped (generated code, data)
    max_files: int = 5_000  # files indexed at most (the nearest the folders' tops first)
    max_total_bytes: int = 50_000_000  # text indexed at most, all files together
    suffixes: frozenset[str] = CODE_SUFFIXES
    candidates: int = 20  # results taken from each ranking before fusion
    debounce_s: float = 0.2  # file events are batched for this long
    cache_size: int = 256  # query results remembered (keyed by query text)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score."""

    chunk: Chunk
    score: float


_WORD_RE = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def retrieval_tokens(text: str) -> list[str]:
    """Lower-cased identifiers and their sub-words (``parseHttpURL`` -> parsehttpurl, parse, http, url)."""
    out: list[str] = []
    for ident in _IDENT_RE.findall(text):
        low = ident.lower()
        if len(low) > 1:
            out.append(low)
        parts = _WORD_RE.findall(ident)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts if len(p) > 1)
    return out


def rrf_merge(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several rankings of ids, best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _lower_priority() -> None:
    """Run the calling background thread at a lower CPU priority than request handling (Linux)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


@functools.lru_cache(maxsize=256)
def _resolved(path: str) -> str:
    """The resolved form of a document path (cached: this runs on every keystroke)."""
    return str(Path(path).resolve())


def is_ignored_dir(path: Path) -> bool:
    """Whether a folder is never indexed (VCS, virtualenv, dependencies, build output)."""
    return path.name in IGNORED_DIRS or (path / "pyvenv.cfg").is_file()


class WorkspaceIndex:
    """BM25 + faiss retrieval over the chunks of the files under some roots."""

    def __init__(
        self,
        roots: Iterable[str | Path],
        embedder_factory: Callable[[], Embedder] | None = None,
        config: IndexConfig | None = None,
        on_limit: Callable[[str, str], None] | None = None,
    ) -> None:
        self.roots = [Path(r).resolve() for r in roots]
        self.config = config or IndexConfig()
        self._on_limit = on_limit
        self.limit_reached: str | None = None  # which cap left files out ("files" or "bytes")
        self._sizes: dict[str, int] = {}  # indexed file -> bytes read
        self._total_bytes = 0
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self._lock = threading.RLock()
        self._chunks: dict[int, Chunk] = {}
        self._tokens: dict[int, list[str]] = {}
        self._by_file: dict[str, list[int]] = {}
        self._next_id = 0
        self._bm25 = None
        self._bm25_ids: list[int] = []
        self._dirty = True
        self._faiss = None
        self._embedded: set[int] = set()
        self._pending_embed: list[int] = []
        self._cache: OrderedDict[tuple, list[Hit]] = OrderedDict()
        self._generation = 0
        self._events: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._worker: threading.Thread | None = None
        self._observer = None
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # query text -> embedding
        self._wanted: str | None = None  # newest query waiting for its embedding
        self._wanted_event = threading.Event()
        self._query_worker: threading.Thread | None = None
        self.error: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, *, watch: bool = True) -> None:
        """Index the roots in a background thread, then follow file events (the watches are
        placed on that thread too: walking a large tree must not hold up the caller)."""
        self._worker = threading.Thread(target=self._run, args=(watch,), name="workspace-index", daemon=True)
        self._worker.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first full scan (and its embeddings) is done."""
        return self._ready.wait(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop watching and indexing; waits for the threads (embedding runs native code that must
        not be running when the process exits). False if one of them is still running."""
        self._stop.set()
        self._events.put(("stop", None))
        self._wanted_event.set()
        threads = [self._worker, self._query_worker]
        end = time.monotonic() + timeout
        if self._observer is not None:
            self._observer.stop(timeout)
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))
        watching = self._observer is not None and self._observer.is_alive()
        return not watching and not any(t is not None and t.is_alive() for t in threads)

    def _start_observer(self) -> None:
        watcher = FolderWatcher(
            self.roots, lambda path: self._events.put(("update", path)), skip=is_ignored_dir
        )
        watcher.start()
        self._observer = watcher

    def _run(self, watch: bool = False) -> None:
        _lower_priority()
        if watch:
            try:
                self._start_observer()
            except Exception:  # the index is still useful without updates
                log.exception("watching the workspace failed; its changes are not followed")
            if self._stop.is_set() and self._observer is not None:  # closed meanwhile
                self._observer.stop()
        try:
            for path in self.iter_files():
                if self._stop.is_set():
                    return
                self.update_file(path)
                if self.limit_reached:  # the rest is further from the folders' tops
                    break
            self._embed_pending()
        except Exception as exc:  # the index is optional: completion keeps working without it
            log.exception("workspace index scan failed")
            self.error = f"Indexing the workspace failed ({exc}); completions use the current file only."
        finally:
            self._ready.set()
        while not self._stop.is_set():
            kind, path = self._events.get()
            if kind == "stop":
                return
            paths = {path} if path else set()
            deadline = time.monotonic() + self.config.debounce_s
            while (left := deadline - time.monotonic()) > 0:
                try:
                    kind, more = self._events.get(timeout=left)
                except queue.Empty:
                    break
                if kind == "stop":
                    return
                if more:
                    paths.add(more)
            for p in sorted(paths):
                try:
                    self.update_path(Path(p))
                except Exception:
                    log.exception("re-indexing %s failed", p)
            try:
                self._embed_pending()
            except Exception as exc:
                log.exception("embedding new chunks failed")
                self.error = f"Embedding workspace chunks failed ({exc}); retrieval uses BM25 only."

    # ---- files -----------------------------------------------------------------------------

    def _accepts(self, path: Path) -> bool:
        if path.suffix.lower() not in self.config.suffixes:
            return False
        try:
            rel_parents = path.resolve().parents
        except OSError:
            return False
        for parent in rel_parents:
            if parent in self.roots:
                return True
            if is_ignored_dir(parent):
                return False
        return False

    def iter_files(self) -> Iterable[Path]:
        """Files under the roots that the index reads, breadth-first: a folder's files before those
        of its sub-folders (ignored folders pruned)."""
        folders = deque(self.roots)
        while folders:
            folder = folders.popleft()
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    if not is_ignored_dir(entry):
                        folders.append(entry)
                elif entry.suffix.lower() in self.config.suffixes:
                    yield entry

    def _read(self, path: Path) -> str | None:
        try:
            if not path.is_file() or path.stat().st_size > self.config.max_file_bytes:
                return None
            data = path.read_bytes()
        except OSError:
            return None
        if b"\x00" in data[:8192]:
            return None
        return data.decode("utf-8", errors="replace")

    def update_path(self, path: Path) -> None:
        """Follow a file-system event: a file is re-indexed, a folder re-scanned, a vanished path dropped."""
        if path.is_dir():
            if not is_ignored_dir(path):
                for root in self.roots:
                    if path == root or root in path.resolve().parents:
                        sub = WorkspaceIndex([path], config=self.config)
                        for f in sub.iter_files():
                            self.update_file(f)
                        break
            return
        if not path.exists():
            prefix = str(path.absolute()).rstrip("/") + "/"
            with self._lock:
                gone = [k for k in self._by_file if k.startswith(prefix)]
            for k in gone:
                self.update_file(Path(k))
        self.update_file(path)

    def update_file(self, path: Path) -> int:
        """(Re-)index one file, or drop it when it is gone or not indexable; returns its chunk count."""
        path = Path(path)
        key = str(path.resolve()) if path.exists() else str(path.absolute())
        text = self._read(path) if self._accepts(path) else None
        if not self._within_limits(key, text):
            text = None
        from attribution.chunking import chunk_text  # numba: loaded on the indexing thread

        chunks = chunk_text(text, key, max_lines=MAX_CHUNK_LINES, min_lines=1) if text else []
        with self._lock:
            for cid in self._by_file.pop(key, []):
                self._chunks.pop(cid, None)
                self._tokens.pop(cid, None)
                if cid in self._embedded:
                    self._embedded.discard(cid)
                    if self._faiss is not None:
                        self._faiss.remove_ids(np.asarray([cid], dtype=np.int64))
            ids = []
            for chunk in chunks:
                cid = self._next_id
                self._next_id += 1
                self._chunks[cid] = chunk
                self._tokens[cid] = retrieval_tokens(chunk.text)
                ids.append(cid)
            if ids:
                self._by_file[key] = ids
                self._pending_embed.extend(ids)
            self._dirty = True
            self._generation += 1
            self._cache.clear()
        return len(ids)

    def _within_limits(self, key: str, text: str | None) -> bool:
        """Account a file's text against the caps; False (and ``on_limit`` told once) when it would
        pass one. A file read again is accounted at its new size; a dropped file frees its share."""
        size = len(text.encode("utf-8", errors="replace")) if text is not None else 0
        with self._lock:
            old = self._sizes.pop(key, None)
            if old is not None:
                self._total_bytes -= old
            if text is None:
                return True
            config = self.config
            if old is None and len(self._sizes) >= config.max_files:
                reached = "files"
            elif self._total_bytes + size > config.max_total_bytes:
                reached = "bytes"
            else:
                self._sizes[key] = size
                self._total_bytes += size
                return True
            first = self.limit_reached is None
            self.limit_reached = reached
        log.debug("workspace index: %s not indexed (the %s cap is reached)", key, reached)
        if first and self._on_limit is not None:
            limit = (
                f"{config.max_files} files"
                if reached == "files"
                else f"{config.max_total_bytes // 1_000_000} MB of text"
            )
            self._on_limit(
                reached,
                f"the workspace has more code than cross-file context indexes ({limit}); the files "
                "nearest the top of each workspace folder are indexed, the rest are left out",
            )
        return False

    @property
    def total_bytes(self) -> int:
        """Bytes of text indexed."""
        with self._lock:
            return self._total_bytes

    def _embed_pending(self) -> None:
        if self._embedder_factory is None:
            with self._lock:
                self._pending_embed.clear()
            return
        if self._embedder is None:
            self._embedder = self._embedder_factory()
        with self._lock:
            todo = [cid for cid in self._pending_embed if cid in self._chunks]
            texts = [self._chunks[cid].text for cid in todo]
        if not todo:
            with self._lock:
                self._pending_embed.clear()
            return
        batches = []
        for at in range(0, len(texts), EMBED_BATCH):  # small batches, so close() never waits long
            if self._stop.is_set():
                return
            batches.append(self._embedder.embed(texts[at : at + EMBED_BATCH]))
        vectors = np.concatenate(batches)
        faiss = import_heavy("faiss")

        with self._lock:
            if self._faiss is None:
                self._faiss = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
            done = set(todo)
            self._pending_embed = [cid for cid in self._pending_embed if cid not in done]
            live = [i for i, cid in enumerate(todo) if cid in self._chunks]
            if live:
                self._faiss.add_with_ids(vectors[live], np.asarray([todo[i] for i in live], dtype=np.int64))
                self._embedded.update(todo[i] for i in live)
            self._cache.clear()

    # ---- search ----------------------------------------------------------------------------

    def clear_caches(self) -> None:
        """Forget cached query embeddings and results (for measurements)."""
        with self._lock:
            self._vectors.clear()
            self._cache.clear()

    @property
    def ready(self) -> bool:
        """Whether the first scan is done and every chunk has its embedding (when dense vectors are on)."""
        with self._lock:
            return self._ready.is_set() and (not self._pending_embed or self.error is not None)

    @property
    def chunk_count(self) -> int:
        """Number of indexed chunks."""
        with self._lock:
            return len(self._chunks)

    @property
    def file_count(self) -> int:
        """Number of indexed files."""
        with self._lock:
            return len(self._by_file)

    def _bm25_ranking(self, query: str, exclude: str | None, k: int) -> list[int]:
        bm25s = import_heavy("bm25s")
        tokens = retrieval_tokens(query)
        if not tokens:
            return []
        with self._lock:
            if self._dirty:
                self._bm25_ids = list(self._chunks)
                self._bm25 = None
                if self._bm25_ids:
                    self._bm25 = bm25s.BM25()
                    self._bm25.index([self._tokens[c] or ["_"] for c in self._bm25_ids], show_progress=False)
                self._dirty = False
            bm25, ids = self._bm25, self._bm25_ids
        if bm25 is None:
            return []
        vocab = bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return []
        docs, scores = bm25.retrieve([known], k=min(len(ids), k + 16), show_progress=False, n_threads=1)
        ranking = []
        for doc, score in zip(docs[0], scores[0], strict=False):
            if score <= 0:
                continue
            cid = ids[int(doc)]
            chunk = self._chunks.get(cid)
            if chunk is not None and chunk.path != exclude:
                ranking.append(cid)
        return ranking[:k]

    def _query_vector(self, query: str, wait: bool) -> np.ndarray | None:
        """The query's embedding; without ``wait`` only a cached one (else it is computed in the background)."""
        with self._lock:
            vector = self._vectors.get(query)
            if vector is not None:
                self._vectors.move_to_end(query)
                return vector
        if not wait:
            self._want(query)
            return None
        vector = self._embedder.embed([query])
        self._remember(query, vector)
        return vector

    def _remember(self, query: str, vector: np.ndarray) -> None:
        with self._lock:
            self._vectors[query] = vector
            while len(self._vectors) > self.config.cache_size:
                self._vectors.popitem(last=False)

    def _want(self, query: str) -> None:
        with self._lock:
            self._wanted = query
            if self._query_worker is None:
                self._query_worker = threading.Thread(
                    target=self._embed_queries, name="query-embed", daemon=True
                )
                self._query_worker.start()
        self._wanted_event.set()

    def _embed_queries(self) -> None:
        _lower_priority()
        while not self._stop.is_set():
            self._wanted_event.wait()
            self._wanted_event.clear()
            with self._lock:
                query, self._wanted = self._wanted, None
            if query is None or self._stop.is_set() or self._embedder is None:
                continue
            try:
                self._remember(query, self._embedder.embed([query]))
            except Exception:
                log.exception("embedding a query failed")

    def _dense_ranking(self, query: str, exclude: str | None, k: int, wait: bool = True) -> list[int] | None:
        if self._embedder is None or self._faiss is None or self._faiss.ntotal == 0:
            return []
        vector = self._query_vector(query, wait)
        if vector is None:
            return None
        with self._lock:
            _scores, ids = self._faiss.search(vector, min(self._faiss.ntotal, k + 16))
            ranking = []
            for cid in ids[0]:
                chunk = self._chunks.get(int(cid))
                if cid >= 0 and chunk is not None and chunk.path != exclude:
                    ranking.append(int(cid))
        return ranking[:k]

    def peek(self, query: str, *, exclude_path: str | None = None, limit: int = 4) -> list[Hit] | None:
        """The cached hybrid hits of a query, or None when they must be computed (``search``).

        Never waits: a lock held by the indexing thread also means None. The query of a completion
        is stable while a line is typed, so most keystrokes are answered here on the event loop.
        """
        exclude = _resolved(exclude_path) if exclude_path else None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            hits = self._cache.get((query, exclude, limit, "hybrid"))
            if hits is not None:
                self._cache.move_to_end((query, exclude, limit, "hybrid"))
            return hits
        finally:
            self._lock.release()

    def search(
        self,
        query: str,
        *,
        exclude_path: str | None = None,
        limit: int = 4,
        mode: str = "hybrid",
        wait: bool = True,
    ) -> list[Hit]:
        """The best chunks for ``query`` (BM25 and dense rankings fused), excluding one file.

        ``mode`` is "hybrid", "bm25" or "dense" (the last two for measurements). With
        ``wait=False`` (inline completion) a query whose embedding is not cached is answered by
        BM25 alone while the embedding is computed in the background for the next keystroke.
        """
        if mode not in ("hybrid", "bm25", "dense"):
            raise ValueError(f"unknown search mode {mode!r}; use hybrid, bm25 or dense")
        exclude = _resolved(exclude_path) if exclude_path else None
        key = (query, exclude, limit, mode)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            generation = self._generation
        k = self.config.candidates
        rankings = []
        complete = True
        if mode in ("hybrid", "bm25"):
            rankings.append(self._bm25_ranking(query, exclude, k))
        if mode in ("hybrid", "dense"):
            dense = self._dense_ranking(query, exclude, k, wait)
            complete = dense is not None
            rankings.append(dense or [])
        with self._lock:
            hits = [
                Hit(self._chunks[cid], score) for cid, score in rrf_merge(rankings) if cid in self._chunks
            ]
            hits = hits[:limit]
            if complete and generation == self._generation:
                self._cache[key] = hits
                while len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)
        return hits
