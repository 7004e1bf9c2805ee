"""Compiled inner loops of the index build (numba): tokens, key lookup, MinHash, Python lines.

Each kernel replaces a chain of numpy passes over one file with a single loop, compiled on
first use and cached on disk (``cache=True``), so later processes load it in milliseconds.
The pure-numpy and regular-expression versions they replace stay the reference in the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["scan_ascii_tokens", "table_find", "table_insert", "minhash_into", "python_lines", "warm_up"]

# Byte classes of attribution.token_scan's class table.
SPACE, LETTER, DIGIT = 0, 1, 2  # any other value: a byte that is a token of its own
_NEWLINE, _HASH, _SLASH, _BACKSLASH, _DOT = 10, 35, 47, 92, 46
_KEY_BASE = np.uint64(0x9E3779B97F4A7C15)
_SLOT_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True)
def _comment_at(data, i, n):
    c = data[i]
    return c == _HASH or (c == _SLASH and i + 1 < n and data[i + 1] == _SLASH)


@njit(cache=True, nogil=True)
def _string_end(data, i, n):
    """End of the string literal opening at ``i``, or -1 when the quote opens none.

    The literal ends at the next equal quote not escaped by a backslash, on the same line and
    before the line's comment (a ``#`` or ``//`` cuts the line first, even inside a string).
    """
    quote = data[i]
    j = i + 1
    while j < n:
        d = data[j]
        if d == _NEWLINE or _comment_at(data, j, n):
            return -1
        if d == _BACKSLASH:
            if j + 1 >= n or data[j + 1] == _NEWLINE or _comment_at(data, j + 1, n):
                return -1
            j += 2
            continue
        if d == quote:
            return j + 1
        j += 1
    return -1


@njit(cache=True, nogil=True)
def scan_ascii_tokens(data, classes):
    """Tokens of ASCII bytes with ``\\n`` line breaks: ``(starts, ends, keys, lines)``.

    ``classes`` maps a byte to SPACE, LETTER, DIGIT or another class. A line is cut at its
    first ``#`` or ``//``; a name is a letter and the letters and digits after it; a number a
    digit and the letters, digits and dots after it; a string a quote up to its closing quote;
    any other byte is a token of its own. Each token's key is ``sum b_i * base**i`` mod 2**64.
    """
    n = len(data)
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    keys = np.empty(n, dtype=np.uint64)
    lines = np.empty(n, dtype=np.int64)
    count = 0
    line = 0
    i = 0
    while i < n:
        c = data[i]
        if c == _NEWLINE:
            line += 1
            i += 1
            continue
        if _comment_at(data, i, n):
            while i < n and data[i] != _NEWLINE:
                i += 1
            continue
        kind = classes[c]
        if kind == SPACE:
            i += 1
            continue
        start = i
        i += 1
        if kind == LETTER:
            while i < n and (classes[data[i]] == LETTER or classes[data[i]] == DIGIT):
                i += 1
        elif kind == DIGIT:
            while i < n and (classes[data[i]] == LETTER or classes[data[i]] == DIGIT or data[i] == _DOT):
                i += 1
        elif c == 34 or c == 39:  # a quote: a whole literal, or a token of its own
            end = _string_end(data, start, n)
            if end > 0:
                i = end
        key = np.uint64(0)
        power = np.uint64(1)
        for j in range(start, i):
            key += np.uint64(data[j]) * power
            power *= _KEY_BASE
        starts[count] = start
        ends[count] = i
        keys[count] = key
        lines[count] = line
        count += 1
    return starts[:count], ends[:count], keys[:count], lines[:count]


@njit(cache=True, nogil=True)
def _slot(key, bits):
    return np.int64((key * _SLOT_MULTIPLIER) >> np.uint64(64 - bits))


@njit(cache=True, nogil=True)
def table_find(table_keys, table_ids, bits, keys):
    """Ids of ``keys`` in an open-addressing table (linear probing), -1 where absent."""
    mask = len(table_ids) - 1
    out = np.empty(len(keys), dtype=np.int64)
    for k in range(len(keys)):
        key = keys[k]
        slot = _slot(key, bits)
        while True:
            found = table_ids[slot]
            if found < 0:
                out[k] = -1
                break
            if table_keys[slot] == key:
                out[k] = found
                break
            slot = (slot + 1) & mask
    return out


@njit(cache=True, nogil=True)
def table_insert(table_keys, table_ids, bits, keys, ids):
    """Insert distinct keys that are not in the table yet (the table has room for them)."""
    mask = len(table_ids) - 1
    for k in range(len(keys)):
        slot = _slot(keys[k], bits)
        while table_ids[slot] >= 0:
            slot = (slot + 1) & mask
        table_keys[slot] = keys[k]
        table_ids[slot] = ids[k]


@njit(cache=True, nogil=True)
def minhash_into(hashes, offsets, a, b, out):
    """MinHash of each set (datasketch's ``affine32`` scheme) written into ``out`` rows.

    Set ``s`` is ``hashes[offsets[s]:offsets[s + 1]]`` (uint32 shingle hashes); each is mixed
    with MurmurHash3's 32-bit finaliser, then permuted by ``(a * h + b) mod 2**32``. Rows of
    empty sets are left as they are.
    """
    num_perm = len(a)
    a64 = a.astype(np.uint64)
    b64 = b.astype(np.uint64)
    low = np.uint64(0xFFFFFFFF)
    for s in range(len(offsets) - 1):
        row = out[s]
        for idx in range(offsets[s], offsets[s + 1]):
            h = np.uint64(hashes[idx])
            h ^= h >> np.uint64(16)
            h = (h * np.uint64(0x85EBCA6B)) & low
            h ^= h >> np.uint64(13)
            h = (h * np.uint64(0xC2B2AE35)) & low
            h ^= h >> np.uint64(16)
            for p in range(num_perm):
                value = np.uint32((a64[p] * h + b64[p]) & low)
                if value < row[p]:
                    row[p] = value


@njit(cache=True, nogil=True)
def _literal_end(data, i, n):
    """End of the string literal or comment starting at ``i``, or -1 when none starts there.

    As ``chunking._LITERAL_RE`` at one position: a triple-quoted string (a backslash escapes
    any character), else a one-line string (a backslash escapes any character, a line break
    included), else a ``#`` comment up to the line break.
    """
    c = data[i]
    if c == _HASH:
        j = i + 1
        while j < n and data[j] != _NEWLINE:
            j += 1
        return j
    if c != 34 and c != 39:
        return -1
    if i + 2 < n and data[i + 1] == c and data[i + 2] == c:
        j = i + 3
        while j < n:
            d = data[j]
            if d == _BACKSLASH:
                j += 2
                continue
            if d == c and j + 2 < n and data[j + 1] == c and data[j + 2] == c:
                return j + 3
            j += 1
    j = i + 1
    while j < n:
        d = data[j]
        if d == _BACKSLASH:
            j += 2
            continue
        if d == _NEWLINE:
            return -1
        if d == c:
            return j + 1
        j += 1
    return -1


@njit(cache=True, nogil=True)
def python_lines(data, n_lines):
    """Per line of Python code: ``(continued, first, indent, blank)``.

    ``continued``: the line continues the one before it (inside brackets or a multi-line
    string, or after a backslash); ``first``: offset of its first character that is not a
    space, ``indent`` that character's column; ``blank``: it holds only spaces. Brackets in strings and comments are not counted,
    and the depth never goes below zero (a snippet may close brackets it never opened).
    ``data`` holds the code points of text with ``\\n`` line breaks and no tabs.
    """
    n = len(data)
    continued = np.zeros(n_lines, dtype=np.bool_)
    first = np.zeros(n_lines, dtype=np.int64)
    indent = np.zeros(n_lines, dtype=np.int64)
    blank = np.zeros(n_lines, dtype=np.bool_)
    depth = 0
    line = 0
    line_start = 0
    i = 0
    while i <= n:
        if i == n or data[i] == _NEWLINE:
            if line < n_lines:
                j = line_start
                while j < i and data[j] == 32:
                    j += 1
                first[line] = j
                indent[line] = j - line_start
                blank[line] = j == i
                if line + 1 < n_lines and i < n:
                    continued[line + 1] = depth > 0 or (i > 0 and data[i - 1] == _BACKSLASH)
            line += 1
            line_start = i + 1
            i += 1
            continue
        c = data[i]
        if c == _HASH or c == 34 or c == 39:
            end = _literal_end(data, i, n)
            if end > 0:
                # Line breaks inside a literal (multi-line strings) continue the line before.
                for j in range(i, min(end, n)):
                    if data[j] == _NEWLINE:
                        if line < n_lines:
                            k = line_start
                            while k < j and data[k] == 32:
                                k += 1
                            first[line] = k
                            indent[line] = k - line_start
                            blank[line] = k == j
                        if line + 1 < n_lines:
                            continued[line + 1] = True
                        line += 1
                        line_start = j + 1
                i = end
                continue
        elif c == 40 or c == 91 or c == 123:
            depth += 1
        elif c == 41 or c == 93 or c == 125:
            depth = max(depth - 1, 0)
        i += 1
    return continued, first, indent, blank


def warm_up() -> None:
    """Load (or compile) every kernel now, e.g. before forking worker processes that use them."""
    data = np.frombuffer(b"def f(x):\n    return 'a' # c\n", dtype=np.uint8)
    classes = np.zeros(256, dtype=np.int8)
    scan_ascii_tokens(data, classes)
    python_lines(data, 2)
    python_lines(data.astype(np.uint32), 2)
    table = np.zeros(4, dtype=np.uint64), np.full(4, -1, dtype=np.int64)
    table_insert(*table, 2, np.ones(1, dtype=np.uint64), np.zeros(1, dtype=np.int64))
    table_find(*table, 2, np.ones(1, dtype=np.uint64))
    ones = np.ones(1, dtype=np.uint32)
    minhash_into(ones, np.array([0, 1]), ones, ones, np.zeros((1, 1), dtype=np.uint32))
