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
    normalized_tokens,
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
    window_hashes: np.ndarray  # uint64
    window_offsets: np.ndarray  # uint32, offset in the normalised text
    chunk_starts: np.ndarray  # int32, 1-based
    chunk_ends: np.ndarray  # int32, 1-based inclusive
    streams: dict[str, ChunkSets]
    bm25: list[list[str]]  # per chunk, the words BM25 indexes
    normalized: Normalized | None = None  # kept for queries only


def bm25_tokens(tokens: list[str]) -> list[str]:
    """Words for BM25: identifiers and keywords, lower-cased (punctuation carries no meaning there)."""
    return [t.lower() for t in tokens if t[0].isalpha() or t[0] == "_"]


def _chunk_sets(per_chunk: list[np.ndarray], params: FingerprintParams) -> ChunkSets:
    sets = [np.unique(h) for h in per_chunk]
    offsets = np.zeros(len(sets) + 1, dtype=np.int64)
    if sets:
        np.cumsum([len(s) for s in sets], out=offsets[1:])
    flat = np.concatenate(sets) if sets else np.empty(0, dtype=np.uint32)
    flat = flat.astype(np.uint32, copy=False)
    return ChunkSets(flat, offsets, minhash_signatures(flat, offsets, params.num_perm, params.seed))


def fingerprint(text: str, path: str, params: FingerprintParams, *, query: bool = False) -> FileFingerprint:
    """Fingerprint a text (a corpus file, or a query when ``query`` is true)."""
    norm = normalize(text)
    hashes, offsets = window_hashes(norm.text, 1 if query else params.build_stride)
    lines = text.splitlines()
    chunks: list[Chunk] = chunk_text(textwrap.dedent(text) if query else text, path or "query.py")
    raw_sets: list[np.ndarray] = []
    norm_sets: list[np.ndarray] = []
    words: list[list[str]] = []
    for chunk in chunks:
        body = "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        tokens = code_tokens(body)
        raw_sets.append(shingle_hashes(token_hashes(tokens), params.shingle_size))
        norm_sets.append(shingle_hashes(token_hashes(normalized_tokens(tokens)), params.shingle_size))
        words.append(bm25_tokens(tokens))
    return FileFingerprint(
        n_lines=len(lines),
        window_hashes=hashes,
        window_offsets=offsets,
        chunk_starts=np.asarray([c.start_line for c in chunks], dtype=np.int32),
        chunk_ends=np.asarray([c.end_line for c in chunks], dtype=np.int32),
        streams={"raw": _chunk_sets(raw_sets, params), "norm": _chunk_sets(norm_sets, params)},
        bm25=words,
        normalized=norm if query else None,
    )
