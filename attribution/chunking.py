"""Split source text into chunks for near-duplicate search: functions and classes.

Python files are split along their blocks (found from indentation, see below): a chunk is a
function or method with its decorators (nested functions stay in their parent), the head of a
class up to its first member, and runs of module-level code. Other files, and the parts left
over, are cut into windows of lines. The scan is error-tolerant, so a snippet cut out of a file
still yields its functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attribution import kernels
from attribution.normalize import has_other_line_breaks
from attribution.token_scan import word_table

__all__ = ["Chunk", "chunk_text", "chunk_lines", "language_of", "CHUNKERS", "WINDOW_LINES"]

WINDOW_LINES = 30  # lines per window where no parse applies
_MIN_LEFTOVER_LINES = 3  # shorter runs of module-level code are not chunks


@dataclass(frozen=True, slots=True)
class Chunk:
    """A range of lines, 1-based and inclusive."""

    start_line: int
    end_line: int


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


def _fill_gaps(starts: np.ndarray, ends: np.ndarray, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Add windows over runs of non-blank lines that no chunk covers; sort by (start, end)."""
    n = len(lines)
    solid = np.fromiter(map(len, lines), dtype=np.int64, count=n) > 0
    solid &= ~np.fromiter(map(str.isspace, lines), dtype=bool, count=n)
    return kernels.fill_gaps(
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        solid,
        WINDOW_LINES,
        _MIN_LEFTOVER_LINES,
    )


def chunk_lines(text: str, path: str = "", lines: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`chunk_text` as arrays: ``(start lines, end lines)``, 1-based and inclusive."""
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
    return _fill_gaps(*CHUNKERS[grammar](text, lines), lines)


def chunk_text(text: str, path: str = "", lines: list[str] | None = None) -> list[Chunk]:
    """Chunks of a text; ``path`` (its extension) selects the grammar; ``lines``: its splitlines()."""
    starts, ends = chunk_lines(text, path, lines)
    return list(map(Chunk, starts.tolist(), ends.tolist()))


# Block chunkers by file extension: ``(text, its lines) -> (start lines, end lines)``.
CHUNKERS: dict[str, Callable[[str, list[str]], tuple[np.ndarray, np.ndarray]]] = {
    ".py": _python_blocks,
    ".pyi": _python_blocks,
}
