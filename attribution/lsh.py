"""LSH buckets of chunk signatures: memory-mapped arrays, or datasketch's MinHashLSH in Redis.

Banding follows datasketch (``b`` bands of ``r`` rows; a candidate shares one band). The index
chooses ``(b, r)`` with datasketch's own optimiser for a candidate threshold below the 0.7
verdict threshold, so copies just above 0.7 are not lost to banding; exact Jaccard re-scoring of
the candidates then decides.

Backends, built from a plain dict like datasketch's storage (``{"type": "arrays"}`` or
``{"type": "redis", "redis": {"host": ..., "port": ...}, "basename": b"..."}``):

* ``arrays`` — per band, the chunks' band keys sorted in a uint64 array with the chunk ids beside
  them, saved as ``.npy`` and memory-mapped; a query is a binary search per band. Opening costs
  nothing, where rebuilding a datasketch index from signatures took seconds (see README).
* ``redis`` — datasketch ``MinHashLSH`` with ``storage_config`` of type ``redis``, for buckets
  shared by several machines. Keys are stored as bytes (``prepickle=False``): nothing read back
  from Redis is unpickled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

from attribution import kernels
from attribution.errors import StorageConfigError

__all__ = ["ArrayLSH", "RedisLSH", "LSH_BACKENDS", "lsh_backend", "optimal_bands"]

_BAND_BASE = np.uint64(0xC2B2AE3D27D4EB4F)


# datasketch's optimiser integrates numerically (~70 ms, paid by every build): the choice for the
# index's default parameters is known (tests check it against the optimiser).
KNOWN_BANDS: dict[tuple[float, int], tuple[int, int]] = {(0.5, 128): (25, 5)}


@cache
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's choice of ``(b, r)`` for a Jaccard threshold (equal weights of errors)."""
    known = KNOWN_BANDS.get((threshold, num_perm))
    if known is not None:
        return known
    from datasketch.lsh import _optimal_param

    b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
    return int(b), int(r)


class LSHBackend(Protocol):
    """Candidate lookup for one shingle stream of one index segment."""

    def candidates(self, signature: np.ndarray, limit: int) -> np.ndarray:
        """Chunk ids sharing at least one band with ``signature``, most shared bands first."""
        ...


class ArrayLSH:
    """LSH buckets as one sorted array of band-tagged keys with the chunk ids beside them.

    Each band's key carries the band number in its top bits, so one binary search per query
    finds the buckets of every band (memory-mapped when loaded).
    """

    def __init__(
        self, keys: np.ndarray, ids: np.ndarray, bands: int, rows: int, max_bucket: int = 256
    ) -> None:
        self.keys = keys
        self.ids = ids
        self.bands = bands
        self.rows = rows
        self.max_bucket = max_bucket

    @classmethod
    def build(cls, signatures: np.ndarray, chunk_ids: np.ndarray, bands: int, rows: int) -> ArrayLSH:
        """Bucket the signatures of the given chunks."""
        signatures = np.ascontiguousarray(signatures, dtype=np.uint32)
        keys = kernels.tagged_band_keys(signatures, bands, rows, _BAND_BASE)
        ids = np.broadcast_to(np.asarray(chunk_ids, dtype=np.uint32), (bands, len(chunk_ids))).ravel()
        # Not a stable sort: the order within a bucket is never used (a query counts the ids),
        # and the same signatures still give the same arrays.
        order = np.argsort(keys)
        return cls(keys[order], ids[order], bands, rows)

    def save(self, prefix: Path) -> list[Path]:
        """Write ``<prefix>_lsh_keys.npy`` and ``<prefix>_lsh_ids.npy``."""
        paths = [
            prefix.with_name(prefix.name + "_lsh_keys.npy"),
            prefix.with_name(prefix.name + "_lsh_ids.npy"),
        ]
        np.save(paths[0], self.keys, allow_pickle=False)
        np.save(paths[1], self.ids, allow_pickle=False)
        return paths

    @classmethod
    def load(cls, prefix: Path, bands: int, rows: int) -> ArrayLSH:
        """Memory-map the arrays written by :meth:`save`."""
        keys = np.load(prefix.with_name(prefix.name + "_lsh_keys.npy"), mmap_mode="r", allow_pickle=False)
        ids = np.load(prefix.with_name(prefix.name + "_lsh_ids.npy"), mmap_mode="r", allow_pickle=False)
        if keys.shape != ids.shape or keys.ndim != 1 or keys.dtype != np.uint64:
            raise ValueError("LSH key and id arrays disagree in shape or type")
        return cls(np.asarray(keys), np.asarray(ids), bands, rows)

    def candidates(self, signature: np.ndarray, limit: int) -> np.ndarray:
        if len(self.keys) == 0:
            return np.empty(0, dtype=np.uint32)
        signature = np.ascontiguousarray(signature[None, :], dtype=np.uint32)
        query = kernels.tagged_band_keys(signature, self.bands, self.rows, _BAND_BASE)
        lo = np.searchsorted(self.keys, query, side="left")
        hi = np.searchsorted(self.keys, query, side="right")
        # A huge bucket holds generic boilerplate: it would flood the results, so skip it.
        sizes = hi - lo
        found = [self.ids[a:b] for a, b, n in zip(lo, hi, sizes, strict=True) if 0 < n <= self.max_bucket]
        if not found:
            return np.empty(0, dtype=np.uint32)
        ids, counts = np.unique(np.concatenate(found), return_counts=True)
        return ids[np.argsort(-counts, kind="stable")][:limit]


class RedisLSH:
    """datasketch ``MinHashLSH`` over Redis, holding chunk keys ``b"<segment>:<chunk id>"``."""

    def __init__(self, config: dict, bands: int, rows: int, num_perm: int, seed: int) -> None:
        from datasketch import MinHashLSH

        if "redis" not in config or not isinstance(config["redis"], dict):
            raise StorageConfigError(
                'a redis LSH storage needs a "redis" connection dict, e.g. {"type": "redis", '
                '"redis": {"host": "127.0.0.1", "port": 6379}}.'
            )
        storage = {
            "type": "redis",
            "redis": config["redis"],
            "basename": _as_bytes(config.get("basename", b"stackcoder")),
        }
        self.seed = seed
        self.num_perm = num_perm
        self.lsh = MinHashLSH(
            num_perm=num_perm, params=(bands, rows), storage_config=storage, prepickle=False
        )

    def _minhash(self, signature: np.ndarray):
        from datasketch import LeanMinHash

        return LeanMinHash(
            seed=self.seed, hashvalues=np.asarray(signature, dtype=np.uint32), scheme="affine32"
        )

    def insert_many(self, keys: Iterable[bytes], signatures: np.ndarray) -> None:
        """Insert signatures under bytes keys (one Redis pipeline per buffer)."""
        with self.lsh.insertion_session(buffer_size=10_000) as session:
            for key, sig in zip(keys, signatures, strict=True):
                session.insert(key, self._minhash(sig), check_duplication=False)

    def query_keys(self, signature: np.ndarray) -> list[bytes]:
        """Keys of the chunks sharing a band with ``signature``."""
        return list(self.lsh.query(self._minhash(signature)))

    def is_empty(self) -> bool:
        """Whether no key is stored under this basename yet."""
        return self.lsh.is_empty()


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


# LSH storage types by name.
LSH_BACKENDS: dict[str, Callable[..., object]] = {"arrays": ArrayLSH, "redis": RedisLSH}


def lsh_backend(config: dict | None) -> str:
    """Validate an LSH storage config and return its type name."""
    kind = (config or {"type": "arrays"}).get("type")
    if kind not in LSH_BACKENDS:
        raise StorageConfigError(
            f"unknown LSH storage type {kind!r}; use one of: {', '.join(sorted(LSH_BACKENDS))}."
        )
    return str(kind)
