"""Near-duplicate removal with MinHash LSH (BigCode's recipe).

Fingerprints come from :mod:`attribution.shingles` (5-gram token shingles, 256 permutations),
the same code the provenance index uses. Files whose estimated Jaccard similarity reaches the
threshold (0.7) are linked by :class:`datasketch.MinHashLSH`; linked files form clusters
(connected components) and each cluster keeps one file by :data:`KEEP_RULE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from attribution.shingles import (
    DEFAULT_NUM_PERM,
    DEFAULT_SHINGLE_SIZE,
    code_tokens,
    minhash_of,
    shingles,
)

__all__ = [
    "DedupConfig",
    "KEEP_RULE",
    "signature",
    "lsh_bands",
    "band_keys",
    "UnionFind",
    "cluster_keep",
    "near_duplicate_edges",
]

KEEP_RULE = (
    "in each cluster of near-duplicates keep the longest file; ties go to the smallest "
    "(repository, path) in lexicographic order"
)


@dataclass(frozen=True)
class DedupConfig:
    """Near-dedup parameters (BigCode's)."""

    num_perm: int = DEFAULT_NUM_PERM  # MinHash permutations
    shingle_size: int = DEFAULT_SHINGLE_SIZE  # tokens per shingle
    threshold: float = 0.7  # estimated Jaccard similarity that makes two files duplicates
    seed: int = 1  # MinHash seed (the attribution index uses the same)


def signature(text: str, cfg: DedupConfig) -> np.ndarray:
    """MinHash signature of a file's code tokens, as uint32 (datasketch hash values fit 32 bits)."""
    mh = minhash_of(shingles(code_tokens(text), cfg.shingle_size), num_perm=cfg.num_perm, seed=cfg.seed)
    return np.asarray(mh.hashvalues, dtype=np.uint32)


def _lean(sig: np.ndarray, cfg: DedupConfig) -> LeanMinHash:
    scheme = MinHash(num_perm=1, seed=cfg.seed).scheme
    return LeanMinHash(seed=cfg.seed, hashvalues=sig.astype(np.uint64), scheme=scheme)


def lsh_bands(cfg: DedupConfig) -> tuple[int, int]:
    """(bands, rows per band) datasketch picks for the threshold; shared with the Spark job."""
    return _optimal_param(cfg.threshold, cfg.num_perm, 0.5, 0.5)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One bucket key per LSH band: the band index and its rows' hash values."""
    return [bytes([b]) + sig[b * rows : (b + 1) * rows].tobytes() for b in range(bands)]


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster_keep(
    n: int, edges: Iterable[tuple[int, int]], sizes: Sequence[int], names: Sequence[tuple[str, str]]
) -> tuple[list[bool], int]:
    """Which of n files to keep given duplicate edges, by :data:`KEEP_RULE`; also the cluster count."""
    uf = UnionFind(n)
    for a, b in edges:
        uf.union(a, b)
    best: dict[int, int] = {}
    members: dict[int, int] = {}
    for i in range(n):
        root = uf.find(i)
        members[root] = members.get(root, 0) + 1
        j = best.get(root)
        if j is None or (-sizes[i], names[i]) < (-sizes[j], names[j]):
            best[root] = i
    keep = [False] * n
    for i in best.values():
        keep[i] = True
    clusters = sum(1 for c in members.values() if c > 1)
    return keep, clusters


def near_duplicate_edges(signatures: Sequence[np.ndarray], cfg: DedupConfig) -> list[tuple[int, int]]:
    """Pairs (earlier, later) of files that datasketch's MinHashLSH links at the threshold."""
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    edges: list[tuple[int, int]] = []
    for i, sig in enumerate(signatures):
        mh = _lean(sig, cfg)
        edges.extend((int(j), i) for j in lsh.query(mh))
        lsh.insert(i, mh, check_duplication=False)
    return edges
