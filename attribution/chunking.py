"""Split source text into chunks for near-duplicate search: functions and classes.

Python files are split along their blocks (found from indentation, see below): a chunk is a
function or method with its decorators (nested functions stay in their parent), the head of a
class up to its first member, and runs of module-level code. Other files, and the parts left
over, are cut into windows of lines. The scan is error-tolerant, so a snippet cut out of a file
still yields its functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attribution import kernels

__all__ = ["Chunk", "chunk_text", "language_of", "CHUNKERS", "WINDOW_LINES"]

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


def _windows(start: int, end: int, size: int = WINDOW_LINES) -> list[Chunk]:
    """Windows of at most ``size`` lines covering ``[start, end]``."""
    return [Chunk(s, min(s + size - 1, end)) for s in range(start, end + 1, size)]


# --- Python: blocks from indentation -------------------------------------------------------------
#
# A line-level scan finds what the index needs of a parse (where each function and class starts
# and ends) at a fraction of a parser's cost: one compiled pass (kernels.python_lines) skips
# string literals and comments, counts bracket depth, and marks lines inside brackets or
# multi-line strings, or after a backslash, as continuing the line before them. A block ends before
# the next logical line indented no deeper than its head. Cut-out snippets (unbalanced brackets,
# unterminated strings, dedented code) are tolerated: the scan never fails on malformed input.

_HEAD_RE = re.compile(r"(?:async[ \t]+)?(def)\b|(class)\b|(@)")
_HEAD_FIRST = np.zeros(128, dtype=bool)
_HEAD_FIRST[[ord(c) for c in "adc@"]] = True
_OTHER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ASCII_REWRITE = "\t\r\x0b\x0c\x1c\x1d\x1e"  # characters that make the scan re-join the lines


def _needs_rewrite(text: str) -> bool:
    """Whether the text has tabs or line breaks other than ``\\n`` (the scan wants neither)."""
    if text.isascii():  # a few memchr scans instead of a regular-expression pass
        return any(c in text for c in _ASCII_REWRITE)
    return "\t" in text or _OTHER_BREAKS.search(text) is not None


def _code_units(text: str) -> np.ndarray:
    """The text's code points: uint8 for ASCII text (most source files), uint32 otherwise."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


def _python_chunks(text: str, lines: list[str]) -> list[Chunk]:
    if _needs_rewrite(text):
        lines = [line.expandtabs(8) for line in lines]
        text = "\n".join(lines)
    data = _code_units(text)
    n, n_lines = len(data), len(lines)
    continued, first, indent_all, blank = kernels.python_lines(data, n_lines)
    comment = ~blank & (data[np.minimum(first, max(n - 1, 0))] == 35) if n else np.zeros(n_lines, bool)
    logical = ~blank & ~comment & ~continued
    code = ~blank & (~comment | continued)
    logical_lines = np.flatnonzero(logical)  # 0-based
    indent = indent_all[logical_lines]
    code_lines = np.flatnonzero(code)
    # Heads: logical lines starting with "def", "async def", "class" or a decorator.
    first_logical = first[logical_lines]
    candidates = np.flatnonzero(_HEAD_FIRST[np.minimum(data[np.minimum(first_logical, n - 1)], 127)])
    match = _HEAD_RE.match
    at = first_logical[candidates].tolist()
    found = [(k, m) for k, p in zip(candidates.tolist(), at, strict=True) if (m := match(text, p))]
    if not found:
        return []
    heads = [0 if m.group(1) else 1 if m.group(2) else 2 for _, m in found]
    head_k = np.fromiter((k for k, _ in found), dtype=np.int64, count=len(found))
    head_line = logical_lines[head_k]
    ok = np.ones(len(heads), dtype=bool)
    # Each head's block closes at the next logical line indented no deeper.
    close_k = np.full(len(heads), len(logical_lines), dtype=np.int64)
    head_indent = np.where(ok, indent[np.minimum(head_k, len(indent) - 1)], 0)
    for level in np.unique(head_indent[ok]):
        shallow = np.flatnonzero(indent <= level)
        sel = ok & (head_indent == level)
        pos = np.searchsorted(shallow, head_k[sel], side="right")
        close_k[sel] = np.where(
            pos < len(shallow), shallow[np.minimum(pos, len(shallow) - 1)], len(logical_lines)
        )
    close_line = np.where(
        close_k < len(logical_lines), logical_lines[np.minimum(close_k, len(logical_lines) - 1)], n_lines
    )
    last = np.searchsorted(code_lines, close_line) - 1
    end_line = code_lines[np.maximum(last, 0)] + 1  # 1-based
    chunks: list[Chunk] = []
    stack: list[list] = []  # open blocks: [close index, kind, start line, head end (classes)]
    pending, expect = 0, -1
    rows = zip(heads, head_k.tolist(), head_line.tolist(), close_k.tolist(), end_line.tolist(), strict=True)
    for kind, k, head, close, end in rows:
        while stack and stack[-1][0] <= k:
            _close(stack.pop(), chunks)
        if stack and stack[-1][1] == 0:
            continue  # nested code stays in its function
        line = head + 1
        if kind == 2:
            if not (pending and expect == k):
                pending = line
            expect = k + 1
            continue
        start = pending if pending and expect == k else line
        pending = 0
        if stack and stack[-1][3] is None:
            stack[-1][3] = start - 1  # a class head ends where its first member starts
        stack.append([close, kind, start, None, end])
    while stack:
        _close(stack.pop(), chunks)
    return chunks


def _close(block: list, chunks: list[Chunk]) -> None:
    _close_k, kind, start, head_end, end = block
    if kind == 1 and head_end is not None:
        end = head_end
    chunks.append(Chunk(start, max(start, end)))


def _fill_gaps(chunks: list[Chunk], lines: list[str]) -> list[Chunk]:
    """Add windows over runs of non-blank lines that no chunk covers."""
    n = len(lines)
    edges = np.zeros(n + 2, dtype=np.int64)
    if chunks:
        bounds = np.array([(c.start_line, c.end_line + 1) for c in chunks], dtype=np.int64)
        edges += np.bincount(bounds[:, 0], minlength=n + 2)[: n + 2]
        edges -= np.bincount(np.minimum(bounds[:, 1], n + 1), minlength=n + 2)[: n + 2]
    free = np.cumsum(edges)[1 : n + 1] == 0  # line i + 1 is covered by no chunk
    solid = np.fromiter(map(len, lines), dtype=np.int64, count=n) > 0
    solid &= ~np.fromiter(map(str.isspace, lines), dtype=bool, count=n)
    change = np.diff(np.concatenate(([False], free, [False])).astype(np.int8))
    out = list(chunks)
    counts = np.concatenate(([0], np.cumsum(solid)))
    for start, stop in zip(np.flatnonzero(change == 1), np.flatnonzero(change == -1), strict=True):
        if counts[stop] - counts[start] >= _MIN_LEFTOVER_LINES:
            out.extend(_windows(int(start) + 1, int(stop)))
    return sorted(out, key=lambda c: (c.start_line, c.end_line))


def chunk_text(text: str, path: str = "", lines: list[str] | None = None) -> list[Chunk]:
    """Chunks of a text; ``path`` (its extension) selects the grammar; ``lines``: its splitlines()."""
    lines = text.splitlines() if lines is None else lines
    if not lines:
        return []
    grammar = language_of(path) if path else ".py"
    if grammar is None:
        return [
            c
            for c in _windows(1, len(lines))
            if any(line.strip() for line in lines[c.start_line - 1 : c.end_line])
        ]
    return _fill_gaps(CHUNKERS[grammar](text, lines), lines)


# Block chunkers by file extension: ``(text, its lines) -> chunks``.
CHUNKERS: dict[str, Callable[[str, list[str]], list[Chunk]]] = {".py": _python_chunks, ".pyi": _python_chunks}
