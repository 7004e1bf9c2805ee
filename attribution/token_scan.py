"""Tokens of ASCII source text found by one compiled pass, exactly as the token regex finds them.

:func:`attribution.shingles.line_token_ids` tokenises every corpus file. A regular expression
creates one string object per token, and looking each up in a vocabulary hashes it again; here
:func:`attribution.kernels.scan_ascii_tokens` walks the bytes once, classifying each with a
table, and gives every token a 64-bit polynomial key; :class:`KeyTable` maps keys to
vocabulary ids.

The rules reproduce ``_SKIPPED_RE`` followed by ``_LINE_TOKEN_RE`` of :mod:`attribution.shingles`:
a line is cut at its first ``#`` or ``//``; a name is ``[A-Za-z_][A-Za-z_0-9]*``; a number is a
digit and every ``[A-Za-z_0-9.]`` after it; a string is a quote up to the next unescaped equal
quote on the (cut) line; any other non-space byte is a token of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from attribution import kernels

__all__ = ["Tokens", "scan_ascii", "KeyTable"]


def _class_table() -> np.ndarray:
    """Byte class of each byte: whitespace as Python's ``\\s`` has it, letters, digits, other."""
    table = np.full(256, 3, dtype=np.int8)
    for code in range(128):
        char = chr(code)
        if re.fullmatch(r"\s", char):
            table[code] = kernels.SPACE
        elif re.fullmatch(r"[A-Za-z_]", char):
            table[code] = kernels.LETTER
        elif re.fullmatch(r"[0-9]", char):
            table[code] = kernels.DIGIT
    return table


_CLASS = _class_table()


@dataclass
class Tokens:
    """Tokens of a text: start offset, end offset, 64-bit key and 0-based line of each."""

    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    keys: np.ndarray  # uint64: equal for equal tokens
    lines: np.ndarray  # int64


def scan_ascii(text: str) -> Tokens:
    """Tokens of an ASCII text with ``\\n`` line breaks only (as ``line_token_ids`` reads them).

    A token's key is ``sum b_i * base**i`` mod 2**64 over its bytes: two distinct tokens share a
    key with probability about 2**-64 (none among the ~10**6 distinct tokens of the standard
    library and the installed packages).
    """
    data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return Tokens(*kernels.scan_ascii_tokens(data, _CLASS))


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
