"""Split source text into chunks: functions and classes (the one chunker of the project).

Python files are split along their blocks (found from indentation, see below): a chunk is a
function or method with its decorators (nested functions stay in their parent), the head of a
class up to its first member, and runs of module-level code. Other files, and the parts left
over, are cut into windows of lines. The scan is error-tolerant, so a snippet cut out of a file
(or code being typed) still yields its functions. The attribution index uses the line ranges
(:func:`chunk_lines`); the language server's workspace retrieval the chunks with their text
(:func:`chunk_text`, long ones cut into windows). Lines are 1-based and inclusive everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attribution import kernels
from attribution.normalize import has_other_line_breaks
from attribution.token_scan import word_table

__all__ = [
    "Chunk",
    "chunk_text",
    "chunk_lines",
    "language_of",
    "CHUNKERS",
    "WINDOW_LINES",
    "MIN_LEFTOVER_LINES",
]

WINDOW_LINES = 30  # lines per window where no parse applies
MIN_LEFTOVER_LINES = 3  # shorter runs of module-level code are not chunks (by default)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Lines ``start_line``..``end_line`` of a file (1-based, inclusive) and their text."""

    path: str
    start_line: int
    end_line: int
    text: str


def language_of(path: str) -> str | None:
    """The chunker key for a file path (its extension) or None when no grammar applies."""
    dot = path.rfind(".")
    ext = path[dot:].lower() if dot >= 0 else ""
    return ext if ext in CHUNKERS else None


def _windows(start: int, end: int, size: int = WINDOW_LINES) -> tuple[np.ndarray, np.ndarray]:
    """Windows of at most ``size`` lines covering ``[start, end]``: ``(starts, ends)``."""
    starts = np.arange(start, end + 1, size, dtype=np.int64)
    return starts, np.minimum(starts + size - 1, end)


# --- Python: blocks from indentation -------------------------------------------------------------
#
# A line-level scan finds what the index needs of a parse (where each function and class starts
# and ends) at a fraction of a parser's cost: one compiled pass (kernels.python_lines) skips
# string literals and comments, counts bracket depth, and marks lines inside brackets or
# multi-line strings, or after a backslash, as continuing the line before them. A block ends before
# the next logical line indented no deeper than its head. Cut-out snippets (unbalanced brackets,
# unterminated strings, dedented code) are tolerated: the scan never fails on malformed input.


def _needs_rewrite(text: str) -> bool:
    """Whether the text has tabs or line breaks other than ``\\n`` (the scan wants neither)."""
    return "\t" in text or has_other_line_breaks(text)


def _code_units(text: str) -> np.ndarray:
    """The text's code points: uint8 for ASCII text (most source files), uint32 otherwise."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


def _python_blocks(text: str, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if _needs_rewrite(text):
        lines = [line.expandtabs(8) for line in lines]
        text = "\n".join(lines)
    data = _code_units(text)
    n, n_lines = len(data), len(lines)
    continued, first, indent, blank = kernels.python_lines(data, n_lines)
    comment = ~blank & (data[np.minimum(first, max(n - 1, 0))] == 35) if n else np.zeros(n_lines, bool)
    logical = ~blank & ~comment & ~continued
    code = ~blank & (~comment | continued)
    return kernels.python_blocks(data, first, logical, code, indent, word_table())


def _fill_gaps(
    starts: np.ndarray, ends: np.ndarray, lines: list[str], min_lines: int
) -> tuple[np.ndarray, np.ndarray]:
    """Add windows over the runs that no chunk covers and that hold at least ``min_lines``
    non-blank lines; sort by (start, end)."""
    n = len(lines)
    solid = np.fromiter(map(len, lines), dtype=np.int64, count=n) > 0
    solid &= ~np.fromiter(map(str.isspace, lines), dtype=bool, count=n)
    return kernels.fill_gaps(
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        solid,
        WINDOW_LINES,
        min_lines,
    )


def chunk_lines(
    text: str, path: str = "", lines: list[str] | None = None, *, min_lines: int = MIN_LEFTOVER_LINES
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`chunk_text`'s line ranges as arrays: ``(start lines, end lines)``, 1-based and
    inclusive; ``lines``: the text's splitlines()."""
    lines = text.splitlines() if lines is None else lines
    if not lines:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    grammar = language_of(path) if path else ".py"
    if grammar is None:
        starts, ends = _windows(1, len(lines))
        solid = np.fromiter((bool(line.strip()) for line in lines), dtype=bool, count=len(lines))
        counts = np.concatenate(([0], np.cumsum(solid)))
        keep = counts[ends] > counts[starts - 1]  # windows with a non-blank line
        return starts[keep], ends[keep]
    return _fill_gaps(*CHUNKERS[grammar](text, lines), lines, min_lines)


def chunk_text(
    text: str, path: str = "", *, max_lines: int | None = None, min_lines: int = MIN_LEFTOVER_LINES
) -> list[Chunk]:
    """Chunks of a text with their text (line breaks kept); ``path`` (its extension) selects the
    grammar. Chunks longer than ``max_lines`` are cut into windows of at most that many lines;
    runs of module-level code with fewer than ``min_lines`` non-blank lines are left out."""
    starts, ends = chunk_lines(text, path, min_lines=min_lines)
    if max_lines is not None:
        starts, ends = _cut_long(starts, ends, max_lines)
    kept = text.splitlines(keepends=True)
    return [
        Chunk(path, s, e, "".join(kept[s - 1 : e]))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


def _cut_long(starts: np.ndarray, ends: np.ndarray, max_lines: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the ranges longer than ``max_lines`` into consecutive windows of that many lines."""
    pieces = [_windows(s, e, max_lines) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    if not pieces:
        return starts, ends
    return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])


# Block chunkers by file extension: ``(text, its lines) -> (start lines, end lines)``.
CHUNKERS: dict[str, Callable[[str, list[str]], tuple[np.ndarray, np.ndarray]]] = {
    ".py": _python_blocks,
    ".pyi": _python_blocks,
}
