"""Tokens of ASCII source text found with numpy, exactly as the token regex finds them.

:func:`attribution.shingles.line_token_ids` tokenises every corpus file. A regular expression
creates one string object per token, and looking each up in a vocabulary hashes it again; here
each byte is classified with a table and token starts come from the class of each byte and of
the byte before it. One regular-expression pass finds only comments and string literals (so
only they become match objects), and numbers are extended over their dots one by one. Each
token gets a 64-bit polynomial key computed from prefix sums over the bytes, and
:class:`KeyTable` maps keys to vocabulary ids with vectorised probing.

The rules reproduce ``_SKIPPED_RE`` followed by ``_LINE_TOKEN_RE`` of :mod:`attribution.shingles`:
a line is cut at its first ``#`` or ``//``; a name is ``[A-Za-z_][A-Za-z_0-9]*``; a number is a
digit and every ``[A-Za-z_0-9.]`` after it; a string is a quote up to the next unescaped equal
quote on the (cut) line; any other non-space byte is a token of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain

import numpy as np

__all__ = ["Tokens", "scan_ascii"]

_SPACE, _LETTER, _DIGIT, _DOT, _OTHER, _IN_STRING, _HASH, _SLASH = range(8)
# Comments, and strings that end before the comment of their line: a string's body holds no
# "#" and no "//", and no backslash escapes a "#" or the start of a "//".
_STRING_BODY = r"(?:[^{q}\\\n#/]|/(?!/)|\\(?:[^\n#/]|/(?!/)))*+"
_SPECIAL_RE = re.compile(r"#[^\n]*+|//[^\n]*+" + "".join(f"|{q}{_STRING_BODY.format(q=q)}{q}" for q in "\"'"))


def _class_table() -> np.ndarray:
    """Byte class of each ASCII character (whitespace as Python's ``\\s`` has it)."""
    table = np.full(128, _OTHER, dtype=np.int8)
    for code in range(128):
        char = chr(code)
        if re.fullmatch(r"\s", char):
            table[code] = _SPACE
        elif re.fullmatch(r"[A-Za-z_]", char):
            table[code] = _LETTER
        elif re.fullmatch(r"[0-9]", char):
            table[code] = _DIGIT
    table[ord(".")] = _DOT
    table[ord("#")] = _HASH
    table[ord("/")] = _SLASH
    return table


_CLASS = _class_table()


def _start_table() -> np.ndarray:
    """Whether a byte starts a token, by (class of the byte before) * 8 + (its class)."""
    table = np.zeros((8, 8), dtype=bool)
    table[:, [_DOT, _OTHER]] = True  # single bytes, and the quote opening a string
    table[:, [_LETTER, _DIGIT]] = True  # a name or number starts after anything but a name byte
    table[[_LETTER, _DIGIT], _LETTER] = False
    table[[_LETTER, _DIGIT], _DIGIT] = False
    return table.reshape(-1)


_STARTS = _start_table()
_SPAN = re.Match.span
_NUMBER_RE = re.compile(r"\d[\w.]*+", re.ASCII)
_MOD = 2**64
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64
_POWERS = np.ones(1, dtype=np.uint64)  # _BASE ** k
_INVERSES = np.ones(1, dtype=np.uint64)  # _BASE ** -k


@dataclass
class Tokens:
    """Tokens of a text: start offset, end offset, 64-bit key and 0-based line of each."""

    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    keys: np.ndarray  # uint64: equal for equal tokens
    lines: np.ndarray  # int64


def _power_table(base: int, size: int) -> np.ndarray:
    """``base ** k`` (mod 2**64) for ``k < size``."""
    steps = np.full(size, base, dtype=np.uint64)
    steps[0] = 1
    with np.errstate(over="ignore"):
        return np.multiply.accumulate(steps)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``_BASE ** k`` and ``_BASE ** -k`` (mod 2**64) for ``k < n``."""
    global _POWERS, _INVERSES
    if len(_POWERS) < n:
        size = max(n, 2 * len(_POWERS), 1 << 16)
        _POWERS, _INVERSES = _power_table(_BASE, size), _power_table(pow(_BASE, -1, _MOD), size)
    return _POWERS[:n], _INVERSES[:n]


def _overlay(text: str, kinds: np.ndarray) -> np.ndarray:
    """Classes after comments (blanked out) and string literals (one token each) are found.

    One pass of ``_SPECIAL_RE`` visits comments and strings left to right, as the tokeniser
    meets them; a quote that opens no string is left as a token of its own.
    """
    flat = np.fromiter(chain.from_iterable(map(_SPAN, _SPECIAL_RE.finditer(text))), dtype=np.int64)
    if not len(flat):
        return kinds
    bounds = flat.reshape(-1, 2)
    first = kinds[bounds[:, 0]]
    comment = (first == _HASH) | (first == _SLASH)
    bounds[:, 0] += ~comment  # a string's opening quote starts its token
    edges = np.empty(2 * len(bounds) + 2, dtype=np.int64)
    edges[0], edges[-1] = 0, len(kinds)
    edges[1:-1] = bounds.reshape(-1)
    values = np.full(len(edges) - 1, -1, dtype=np.int8)
    values[1::2] = np.where(comment, _SPACE, _IN_STRING)
    overlay = np.repeat(values, np.diff(edges))
    return np.where(overlay < 0, kinds, overlay)


def _token_starts(text: str, kinds: np.ndarray) -> np.ndarray:
    """Mask of the token starts; a number takes in the dots and names after it."""
    pairs = np.empty(len(kinds), dtype=np.int8)
    pairs[0] = _SPACE * 8
    pairs[1:] = kinds[:-1] * 8
    pairs += kinds
    starts = _STARTS[pairs]
    match = _NUMBER_RE.match
    end = -1
    for c in np.flatnonzero(starts & (kinds == _DIGIT)).tolist():
        if c >= end:
            end = match(text, c).end()
            starts[c + 1 : end] = False
    return starts


def scan_ascii(text: str) -> Tokens:
    """Tokens of an ASCII text with ``\\n`` line breaks only (as ``line_token_ids`` reads them)."""
    data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    n = len(data)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return Tokens(empty, empty, empty.astype(np.uint64), empty)
    kinds = _overlay(text, _CLASS[data])
    kinds[kinds >= _HASH] = _OTHER
    line_ends = np.flatnonzero(data == 10)
    is_start = _token_starts(text, kinds)
    # A token runs up to the next start or the next byte outside every token.
    boundaries = np.flatnonzero(is_start | (kinds == _SPACE))
    at = np.flatnonzero(is_start[boundaries])
    starts = boundaries[at]
    ends = np.append(boundaries, n)[at + 1]
    return Tokens(starts, ends, _keys(data, starts, ends), np.searchsorted(line_ends, starts))


def _keys(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hash of each token's bytes, mod 2**64: ``sum b_i * base**i``.

    From prefix sums of ``b_p * base**p`` over the text, shifted back by ``base**-start``. Two
    distinct tokens share a key with probability about 2**-64 (none among the ~10**6 distinct
    tokens of the standard library and the installed packages).
    """
    n = len(data)
    powers, inverses = _powers(n + 1)
    sums = np.zeros(n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(np.multiply(data, powers[:n], dtype=np.uint64), out=sums[1:])
        return (sums[ends] - sums[starts]) * inverses[starts]


class KeyTable:
    """uint64 key -> int id, an open-addressing hash table probed for many keys at once."""

    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, bits: int = 16) -> None:
        self.bits = bits
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        self.ids = np.full(1 << bits, -1, dtype=np.int64)  # -1: empty slot
        self.count = 0

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return ((keys * self._MULTIPLIER) >> np.uint64(64 - self.bits)).astype(np.int64)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The id of each key, -1 for keys not in the table."""
        out = np.full(len(keys), -1, dtype=np.int64)
        pending = np.arange(len(keys))
        slots = self._slots(keys)
        mask = len(self.ids) - 1
        while len(pending):
            at = slots[pending]
            ids = self.ids[at]
            hit = (ids >= 0) & (self.keys[at] == keys[pending])
            out[pending[hit]] = ids[hit]
            probe = (ids >= 0) & ~hit  # the slot holds another key: try the next one
            pending = pending[probe]
            slots[pending] = (at[probe] + 1) & mask
        return out

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Insert distinct keys that are not in the table yet."""
        if 2 * (self.count + len(keys)) > len(self.ids):
            self._grow(self.count + len(keys))
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        mask = len(self.ids) - 1
        while len(pending):
            at = slots[pending]
            free = self.ids[at] < 0
            self.keys[at[free]] = keys[pending[free]]  # of keys wanting one slot, the last wins
            self.ids[at[free]] = ids[pending[free]]
            placed = free & (self.keys[at] == keys[pending]) & (self.ids[at] == ids[pending])
            pending = pending[~placed]
            slots[pending] = (slots[pending] + ~free[~placed]) & mask  # a taken slot: the next one
        self.count += len(keys)

    def _grow(self, needed: int) -> None:
        live = self.ids >= 0
        keys, ids = self.keys[live], self.ids[live]
        bits = self.bits
        while (1 << bits) < 2 * needed:
            bits += 1
        self.__init__(bits)
        self.add(keys, ids)
