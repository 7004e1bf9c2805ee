"""Normalised text and its 50-character windows, for exact-span membership (as Data Portraits).

Normalisation strips each line's indentation and collapses every run of whitespace, line breaks
included, into one space, so re-indented or re-wrapped copies keep their windows. Each
normalised character remembers the (1-based) line it came from, so spans map back to lines.
Windows are hashed with a 64-bit polynomial over code points followed by the MurmurHash3
finaliser (a compiled loop): stride 50 when a corpus is indexed, stride 1 for a query.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from attribution import kernels

__all__ = ["Normalized", "normalize", "normalized_lines", "window_hashes", "WINDOW"]

WINDOW = 50
_BASE = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class Normalized:
    """Normalised text with the source line of each character."""

    text: str
    lines: np.ndarray  # int32, len(text): 1-based line number of each character

    def line_range(self, start: int, end: int) -> tuple[int, int]:
        """Lines (1-based, inclusive) of the normalised characters ``[start, end)``.

        A line the span only grazes (less than half of its characters, at either end) is left out.
        """
        lines = self.lines
        end = max(end, start + 1)
        first, last = int(lines[start]), int(lines[end - 1])
        if first < last:
            lo = int(np.searchsorted(lines, first, side="left"))
            hi = int(np.searchsorted(lines, first, side="right"))
            if 2 * (hi - start) < hi - lo:
                first = int(lines[hi])
        if first < last:
            lo = int(np.searchsorted(lines, last, side="left"))
            hi = int(np.searchsorted(lines, last, side="right"))
            if 2 * (end - lo) < hi - lo:
                last = int(lines[lo - 1])
        return first, last


# Characters ``str.split()`` treats as whitespace (all below U+3001), and the line breaks of
# ``str.splitlines()`` (``\r\n`` counts once), so lines agree with the rest of the package.
_SPACE_LIMIT = 0x3001
_IS_SPACE = np.array([chr(i).isspace() for i in range(_SPACE_LIMIT)], dtype=bool)
_BREAKS = np.array([0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029], dtype=np.uint32)


def normalize(text: str) -> Normalized:
    """Strip indentation and collapse whitespace runs (line breaks included) into single spaces.

    The result equals ``" ".join(text.split())``; each character keeps its source line (a joining
    space belongs to the line before it).
    """
    codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    if len(codes) == 0:
        return Normalized("", np.empty(0, dtype=np.int32))
    space = _IS_SPACE[np.minimum(codes, _SPACE_LIMIT - 1)] & (codes < _SPACE_LIMIT)
    solid = ~space
    if not solid.any():
        return Normalized("", np.empty(0, dtype=np.int32))
    last_solid = int(np.flatnonzero(solid)[-1])
    separator = np.zeros(len(codes), dtype=bool)
    separator[1:] = space[1:] & solid[:-1]
    separator[last_solid:] = False
    keep = solid | separator
    breaks = np.isin(codes, _BREAKS)
    breaks[1:] &= ~((codes[1:] == 0x0A) & (codes[:-1] == 0x0D))
    line_of = (np.cumsum(breaks) - breaks + 1).astype(np.int32)
    kept = np.where(separator, np.uint32(0x20), codes)[keep]
    return Normalized(kept.tobytes().decode("utf-32-le", errors="surrogatepass"), line_of[keep])


# Whether ``str.split()`` keeps each ASCII byte.
_SOLID_ASCII = np.array([not chr(i).isspace() for i in range(128)] + [False] * 128, dtype=np.bool_)


# Where ``str.splitlines`` splits besides ``\n``; the first six are ASCII.
OTHER_LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def has_other_line_breaks(text: str) -> bool:
    """Whether ``str.splitlines`` would split the text at something other than ``\\n``.

    One ``in`` scan per character (a memchr-like search) beats a regular expression's character
    class several times over on non-ASCII text.
    """
    breaks = OTHER_LINE_BREAKS[:6] if text.isascii() else OTHER_LINE_BREAKS
    return any(c in text for c in breaks)


def normalized_lines(text: str, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """What an index build needs of :func:`normalize`, computed without per-character line numbers.

    Args:
        text: the text; ``lines`` is ``text.splitlines()``.

    Returns:
        ``(codes, line_offsets)``: the normalised text's code points, and for each line (and one
        past the last) the normalised offset where it starts, as ``normalize`` would give them.
    """
    if has_other_line_breaks(text):
        norm = normalize(text)
        offsets = np.searchsorted(norm.lines, np.arange(1, len(lines) + 2), side="left")
        return _code_points(norm.text), offsets.astype(np.uint32)
    if text.isascii():
        data, solid = np.frombuffer(text.encode("ascii"), dtype=np.uint8), _SOLID_ASCII
    else:
        data, solid = _code_points(text), _solid_code_points()
    kept, offsets = kernels.normalize_lines(data, solid, len(lines))
    return kept, offsets.astype(np.uint32)


@functools.cache
def _solid_code_points() -> np.ndarray:
    """Whether ``str.split()`` keeps each code point."""
    solid = np.ones(0x110000, dtype=np.bool_)
    solid[:_SPACE_LIMIT] = ~_IS_SPACE
    return solid


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


def window_hashes(text: str | np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the ``WINDOW``-character windows of a normalised text starting every ``stride``.

    ``text`` is the normalised text or its code points (as :func:`normalized_lines` gives them).
    Returns ``(hashes, offsets)``: uint64 hashes and the uint32 start offset of each window.
    """
    codes = _code_points(text) if isinstance(text, str) else text
    return kernels.window_hashes(codes, WINDOW, stride, _BASE)
