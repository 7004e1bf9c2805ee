"""Fingerprints of one text: exact-span windows, chunks with shingle sets and MinHash signatures.

The same function serves the index build (stride-50 windows, one call per corpus file, run in
worker processes) and the query (stride-1 windows), so both sides see identical fingerprints.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from attribution import kernels
from attribution.chunking import chunk_lines
from attribution.file_tokens import FileTokens, file_tokens
from attribution.normalize import (
    WINDOW,
    Normalized,
    has_other_line_breaks,
    normalize,
    normalized_lines,
    window_hashes,
)
from attribution.shingles import DEFAULT_SHINGLE_SIZE, SHINGLE_MULTIPLIER, minhash_signatures

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
    bm25_words: list[str]  # the file's distinct BM25 words
    bm25_ids: np.ndarray  # int32: the chunks' words, chunk after chunk, as indices into bm25_words
    bm25_bounds: np.ndarray  # int64, n_chunks + 1: chunk c's words are bm25_ids[bounds[c]:bounds[c+1]]
    normalized: Normalized | None = None  # kept for queries only

    @property
    def bm25(self) -> list[list[str]]:
        """Per chunk, the words BM25 indexes."""
        words = self.bm25_words
        ids = self.bm25_ids.tolist()
        bounds = self.bm25_bounds.tolist()
        return [[words[i] for i in ids[bounds[c] : bounds[c + 1]]] for c in range(len(bounds) - 1)]


def bm25_tokens(tokens: list[str]) -> list[str]:
    """Words for BM25: identifiers and keywords, lower-cased (punctuation carries no meaning there)."""
    return [t.lower() for t in tokens if t[0] in _WORD_START]


_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def _chunk_sets(keys: np.ndarray, n_chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct shingles per chunk from ``chunk << 32 | shingle`` keys, and chunk offsets."""
    keys = np.sort(keys)
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    flat = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    offsets = np.zeros(n_chunks + 1, dtype=np.int64)
    np.cumsum(np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=n_chunks), out=offsets[1:])
    return flat, offsets


def _signed(sets: list[tuple[np.ndarray, np.ndarray]], params: FingerprintParams) -> list[ChunkSets]:
    """The sets with their MinHash signatures, all computed in one call."""
    n_sets = [len(offsets) - 1 for _, offsets in sets]
    shift = np.cumsum([0] + [len(flat) for flat, _ in sets[:-1]])
    offsets = np.concatenate([sets[0][1][:1]] + [o[1:] + k for (_, o), k in zip(sets, shift, strict=True)])
    flat = np.concatenate([flat for flat, _ in sets])
    signatures = np.split(
        minhash_signatures(flat, offsets, params.num_perm, params.seed), np.cumsum(n_sets)[:-1]
    )
    return [ChunkSets(f, o, sig) for (f, o), sig in zip(sets, signatures, strict=True)]


def _chunk_tokens(
    text: str, lines: list[str], chunk_starts: np.ndarray, chunk_ends: np.ndarray
) -> tuple[FileTokens, np.ndarray, np.ndarray]:
    """The text's tokens, the indices of the chunks' tokens (chunk after chunk) and the chunk bounds."""
    if has_other_line_breaks(text):
        text = "\n".join(lines)
    tokens = file_tokens(text)
    lo = np.searchsorted(tokens.lines, chunk_starts - 1, side="left")
    hi = np.searchsorted(tokens.lines, chunk_ends - 1, side="right")
    lengths = np.maximum(hi - lo, 0)
    bounds = np.zeros(len(chunk_starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    # Gather each chunk's run (chunks may overlap, so runs are copied, not sliced).
    picks = np.arange(bounds[-1], dtype=np.int64) + np.repeat(lo - bounds[:-1], lengths)
    return tokens, picks, bounds


def fingerprint(text: str, path: str, params: FingerprintParams, *, query: bool = False) -> FileFingerprint:
    """Fingerprint a text (a corpus file, or a query when ``query`` is true)."""
    lines = text.splitlines()
    if query:
        norm = normalize(text)
        hashes, offsets = window_hashes(norm.text, 1)
        line_offsets = np.searchsorted(norm.lines, np.arange(1, len(lines) + 2), side="left").astype(
            np.uint32
        )
    else:
        norm = None
        codes, line_offsets = normalized_lines(text, lines)
        hashes, offsets = window_hashes(codes, params.build_stride)
    if query:
        chunk_starts, chunk_ends = chunk_lines(textwrap.dedent(text), path or "query.py")
    else:
        chunk_starts, chunk_ends = chunk_lines(text, path or "query.py", lines)
    tokens, picks, bound_array = _chunk_tokens(text, lines, chunk_starts, chunk_ends)
    words, word_ids, is_word = tokens.words(picks)
    word_bounds = np.concatenate(([0], np.cumsum(is_word)))[bound_array]
    sets = [
        _chunk_sets(
            kernels.chunk_shingle_keys(hashes[picks], bound_array, params.shingle_size, SHINGLE_MULTIPLIER),
            len(chunk_starts),
        )
        for hashes in (tokens.raw, tokens.norm)
    ]
    streams = dict(zip(STREAMS, _signed(sets, params), strict=True))
    return FileFingerprint(
        n_lines=len(lines),
        line_offsets=line_offsets,
        window_hashes=hashes,
        window_offsets=offsets,
        chunk_starts=chunk_starts.astype(np.int32),
        chunk_ends=chunk_ends.astype(np.int32),
        streams=streams,
        bm25_words=words,
        bm25_ids=word_ids,
        bm25_bounds=word_bounds.astype(np.int64),
        normalized=norm,
    )
