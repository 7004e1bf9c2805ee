"""Fingerprints of one text: exact-span windows, chunks with shingle sets and MinHash signatures.

The same function serves the index build (stride-50 windows, one call per corpus file, run in
worker processes) and the query (stride-1 windows), so both sides see identical fingerprints.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from attribution.chunking import Chunk, chunk_text
from attribution.normalize import WINDOW, Normalized, normalize, window_hashes
from attribution.shingles import (
    DEFAULT_SHINGLE_SIZE,
    code_tokens,
    minhash_signatures,
    shingle_hashes,
    token_hashes,
)

__all__ = ["FingerprintParams", "ChunkSets", "FileFingerprint", "fingerprint", "bm25_tokens", "STREAMS"]

# The two shingle streams: raw tokens, and tokens with identifiers/literals normalised.
STREAMS = ("raw", "norm")


@dataclass(frozen=True)
class FingerprintParams:
    """Fingerprinting parameters, recorded in the index manifest (they must match at query time)."""

    window: int = WINDOW  # characters per exact-span window
    build_stride: int = WINDOW  # window stride when indexing (stride 1 at query time)
    shingle_size: int = DEFAULT_SHINGLE_SIZE  # tokens per shingle
    num_perm: int = 128  # MinHash permutations
    seed: int = 1  # MinHash seed


@dataclass
class ChunkSets:
    """Per-stream shingle sets of a file's chunks: sorted unique uint32 hashes, concatenated."""

    hashes: np.ndarray  # uint32
    offsets: np.ndarray  # int64, n_chunks + 1
    signatures: np.ndarray  # (n_chunks, num_perm) uint32

    def of(self, i: int) -> np.ndarray:
        """Shingle set of chunk ``i``."""
        return self.hashes[self.offsets[i] : self.offsets[i + 1]]


@dataclass
class FileFingerprint:
    """Everything the index stores about one text."""

    n_lines: int
    line_offsets: np.ndarray  # uint32, n_lines + 1: normalised offset where each line starts
    window_hashes: np.ndarray  # uint64
    window_offsets: np.ndarray  # uint32, offset in the normalised text
    chunk_starts: np.ndarray  # int32, 1-based
    chunk_ends: np.ndarray  # int32, 1-based inclusive
    streams: dict[str, ChunkSets]
    bm25: list[list[str]]  # per chunk, the words BM25 indexes
    normalized: Normalized | None = None  # kept for queries only


def bm25_tokens(tokens: list[str]) -> list[str]:
    """Words for BM25: identifiers and keywords, lower-cased (punctuation carries no meaning there)."""
    return [t.lower() for t in tokens if t[0] in _WORD_START]


_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def _per_chunk_shingles(hashes: np.ndarray, bounds: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingles of each chunk's token run (none crosses a chunk border): ``(hashes, owner chunk)``."""
    whole = shingle_hashes(hashes, size)
    parts: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for c in range(len(bounds) - 1):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        if hi - lo >= size:
            part = whole[lo : hi - size + 1]
        elif hi > lo:
            part = shingle_hashes(hashes[lo:hi], size)
        else:
            continue
        parts.append(part)
        owners.append(np.full(len(part), c, dtype=np.int64))
    if not parts:
        return np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.int64)
    return np.concatenate(parts), np.concatenate(owners)


def _chunk_sets(
    hashes: np.ndarray, owners: np.ndarray, n_chunks: int, params: FingerprintParams
) -> ChunkSets:
    """Sorted unique shingles per chunk, concatenated, with their MinHash signatures."""
    order = np.lexsort((hashes, owners))
    hashes, owners = hashes[order], owners[order]
    keep = np.ones(len(hashes), dtype=bool)
    keep[1:] = (hashes[1:] != hashes[:-1]) | (owners[1:] != owners[:-1])
    flat = hashes[keep].astype(np.uint32, copy=False)
    offsets = np.zeros(n_chunks + 1, dtype=np.int64)
    np.cumsum(np.bincount(owners[keep], minlength=n_chunks), out=offsets[1:])
    return ChunkSets(flat, offsets, minhash_signatures(flat, offsets, params.num_perm, params.seed))


def fingerprint(text: str, path: str, params: FingerprintParams, *, query: bool = False) -> FileFingerprint:
    """Fingerprint a text (a corpus file, or a query when ``query`` is true)."""
    norm = normalize(text)
    hashes, offsets = window_hashes(norm.text, 1 if query else params.build_stride)
    lines = text.splitlines()
    chunks: list[Chunk] = chunk_text(textwrap.dedent(text) if query else text, path or "query.py")
    tokens: list[str] = []
    bounds = [0]
    words: list[list[str]] = []
    for chunk in chunks:
        chunk_tokens = code_tokens("\n".join(lines[chunk.start_line - 1 : chunk.end_line]))
        tokens += chunk_tokens
        bounds.append(len(tokens))
        words.append(bm25_tokens(chunk_tokens))
    bound_array = np.asarray(bounds, dtype=np.int64)
    streams = {}
    for stream, normalized in (("raw", False), ("norm", True)):
        shingles, owners = _per_chunk_shingles(
            token_hashes(tokens, normalized=normalized), bound_array, params.shingle_size
        )
        streams[stream] = _chunk_sets(shingles, owners, len(chunks), params)
    line_offsets = np.searchsorted(norm.lines, np.arange(1, len(lines) + 2), side="left").astype(np.uint32)
    return FileFingerprint(
        n_lines=len(lines),
        line_offsets=line_offsets,
        window_hashes=hashes,
        window_offsets=offsets,
        chunk_starts=np.asarray([c.start_line for c in chunks], dtype=np.int32),
        chunk_ends=np.asarray([c.end_line for c in chunks], dtype=np.int32),
        streams=streams,
        bm25=words,
        normalized=norm if query else None,
    )
