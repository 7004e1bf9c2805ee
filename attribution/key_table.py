"""A uint64 -> id hash table probed and filled by compiled loops, for many keys at once."""

from __future__ import annotations

import numpy as np

from attribution import kernels

__all__ = ["KeyTable"]


class KeyTable:
    """uint64 key -> int id, an open-addressing hash table (linear probing, at most half full)."""

    def __init__(self, bits: int = 16) -> None:
        self.bits = bits
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        self.ids = np.full(1 << bits, -1, dtype=np.int64)  # -1: empty slot
        self.count = 0

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The id of each key, -1 for keys not in the table."""
        return kernels.table_find(self.keys, self.ids, self.bits, np.asarray(keys, dtype=np.uint64))

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Insert distinct keys that are not in the table yet."""
        if 2 * (self.count + len(keys)) > len(self.ids):
            self._grow(self.count + len(keys))
        kernels.table_insert(
            self.keys, self.ids, self.bits, np.asarray(keys, dtype=np.uint64), np.asarray(ids, dtype=np.int64)
        )
        self.count += len(keys)

    def _grow(self, needed: int) -> None:
        live = self.ids >= 0
        keys, ids = self.keys[live], self.ids[live]
        bits = self.bits
        while (1 << bits) < 2 * needed:
            bits += 1
        self.__init__(bits)
        self.add(keys, ids)
