"""Code tokens, k-gram shingles and MinHash signatures shared by attribution and training.

The same fingerprints serve two jobs: near-duplicate *search* in the provenance index and
near-duplicate *removal* when the training corpus is built (BigCode's recipe: 5-gram token
shingles, MinHash, LSH at Jaccard 0.7).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash

from attribution import kernels
from attribution.token_scan import normalize_token, token_hash

__all__ = [
    "code_tokens",
    "normalized_tokens",
    "shingles",
    "minhash_of",
    "signature_array",
    "token_hashes",
    "shingle_hashes",
    "minhash_signatures",
    "DEFAULT_NUM_PERM",
    "DEFAULT_SHINGLE_SIZE",
    "SHINGLE_MULTIPLIER",
]

DEFAULT_NUM_PERM = 256
DEFAULT_SHINGLE_SIZE = 5

# Identifiers, numbers, string literals (single-line), and single punctuation characters.
_TOKEN_RE = re.compile(
    r"""[A-Za-z_][A-Za-z_0-9]*"""
    r"""|\d[\w.]*"""
    r"""|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
    r"""|[^\sA-Za-z_0-9]"""
)

_COMMENT_RE = re.compile(r"(?m)(?:#|//).*$")


def code_tokens(text: str, *, strip_comments: bool = True) -> list[str]:
    """Split source text into tokens (names, numbers, strings, punctuation).

    Line comments (``#`` and ``//``) are dropped by default, so copies that lost their comments
    still share their shingles.
    """
    if strip_comments:
        text = _COMMENT_RE.sub("", text)
    return _TOKEN_RE.findall(text)


def normalized_tokens(tokens: Sequence[str]) -> list[str]:
    """Replace identifiers by ``ID``, numbers by ``NUM`` and strings by ``STR``.

    The normalised stream survives renaming of identifiers (as MOSS and JPlag fingerprint it).
    """
    return [normalize_token(token) for token in tokens]


def shingles(tokens: Sequence[str], size: int = DEFAULT_SHINGLE_SIZE) -> set[bytes]:
    """Return the set of ``size``-token shingles, each encoded as bytes.

    A sequence shorter than ``size`` yields one shingle holding all its tokens (empty input: no
    shingles).
    """
    if not tokens:
        return set()
    if len(tokens) < size:
        return {" ".join(tokens).encode("utf-8")}
    return {" ".join(tokens[i : i + size]).encode("utf-8") for i in range(len(tokens) - size + 1)}


def minhash_of(items: Iterable[bytes], num_perm: int = DEFAULT_NUM_PERM, seed: int = 1) -> LeanMinHash:
    """MinHash signature (datasketch) of a set of shingles; compact and serialisable."""
    mh = MinHash(num_perm=num_perm, seed=seed)
    batch = list(items)
    if batch:
        mh.update_batch(batch)
    return LeanMinHash(mh)


def signature_array(mh: LeanMinHash) -> np.ndarray:
    """The signature's hash values as a uint64 array (for storage without pickle)."""
    return np.asarray(mh.hashvalues, dtype=np.uint64)


# --- Vectorised fingerprints -------------------------------------------------------------------
#
# The index fingerprints every chunk of a corpus, so shingles are hashed as integers instead of
# byte strings: each token is hashed once (a polynomial of its characters, mixed), a shingle's hash is a polynomial of its tokens'
# hashes, and the MinHash permutations of datasketch's default ``affine32`` scheme are applied to
# all shingles of many chunks in one compiled loop. ``minhash_signatures`` returns exactly what
# ``MinHash(num_perm, seed, hashfunc=<the shingle hash>).update_batch`` would.


class _HashCache(dict):
    """token -> 64-bit hash, filled on first use (looked up from C through ``map``)."""

    def __init__(self, normalized: bool) -> None:
        super().__init__()
        self.normalized = normalized

    def __missing__(self, token: str) -> int:
        if len(self) > _TOKEN_CACHE_LIMIT:
            self.clear()
        value = self[token] = token_hash(normalize_token(token) if self.normalized else token)
        return value


_TOKEN_CACHE_LIMIT = 2_000_000
_RAW_HASHES = _HashCache(normalized=False)
_NORM_HASHES = _HashCache(normalized=True)
SHINGLE_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # a shingle hash is a polynomial in this
_PERMUTATIONS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def token_hashes(tokens: Sequence[str], *, normalized: bool = False) -> np.ndarray:
    """64-bit hash of each token (:func:`attribution.token_scan.token_hash`), as a uint64 array.

    With ``normalized``, each token is first normalised as :func:`normalized_tokens` does, so
    ``token_hashes(t, normalized=True)`` equals ``token_hashes(normalized_tokens(t))``.
    """
    cache = _NORM_HASHES if normalized else _RAW_HASHES
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def shingle_hashes(hashes: np.ndarray, size: int = DEFAULT_SHINGLE_SIZE) -> np.ndarray:
    """32-bit hash of every ``size``-token shingle of a token-hash array (with repeats, in order).

    Like :func:`shingles`, a sequence shorter than ``size`` yields one shingle of all its tokens.
    The hash is the polynomial of the tokens' hashes in ``SHINGLE_MULTIPLIER`` (mod 2**64),
    mixed by MurmurHash3's 64-bit finaliser, high 32 bits kept (as the index computes it).
    """
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    bounds = np.array([0, len(hashes)], dtype=np.int64)
    keys = kernels.chunk_shingle_keys(hashes, bounds, size, SHINGLE_MULTIPLIER)
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    key = (num_perm, seed)
    if key not in _PERMUTATIONS:
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        _PERMUTATIONS[key] = (np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32))
    return _PERMUTATIONS[key]


def minhash_signatures(
    hashes: np.ndarray, offsets: np.ndarray, num_perm: int = DEFAULT_NUM_PERM, seed: int = 1
) -> np.ndarray:
    """MinHash signatures of many sets at once (datasketch's ``affine32`` scheme).

    Args:
        hashes: uint32 shingle hashes of all sets, concatenated.
        offsets: int array of ``n + 1`` boundaries: set ``i`` is ``hashes[offsets[i]:offsets[i+1]]``.
        num_perm: number of permutations.
        seed: permutation seed (as datasketch's ``MinHash(seed=...)``).

    Returns:
        A ``(n, num_perm)`` uint32 array; an empty set gets the all-``0xFFFFFFFF`` signature.
    """
    a, b = _permutations(num_perm, seed)
    n_sets = len(offsets) - 1
    out = np.full((n_sets, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    if n_sets and len(hashes):
        hashes = np.ascontiguousarray(hashes, dtype=np.uint32)
        kernels.minhash_into(hashes, np.asarray(offsets, dtype=np.int64), a, b, out)
    return out
