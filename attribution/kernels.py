"""Compiled inner loops of the index build (numba): tokens, key lookup, lines, shingles, MinHash.

Each kernel replaces a chain of numpy passes over one file with a single loop, compiled on
first use and cached on disk (``cache=True``), so later processes load it in milliseconds.
The pure-numpy and regular-expression versions they replace stay the reference in the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "scan_tokens",
    "table_find",
    "table_insert",
    "first_occurrences",
    "minhash_into",
    "python_lines",
    "python_blocks",
    "normalize_lines",
    "chunk_shingle_keys",
    "window_hashes",
    "fill_gaps",
    "fmix64",
    "tagged_band_keys",
    "warm_up",
]

# Byte classes of attribution.token_scan's class table.
SPACE, LETTER, DIGIT, OTHER_DIGIT = 0, 1, 2, 4  # any other value: a token of its own
_NEWLINE, _HASH, _SLASH, _BACKSLASH, _DOT = 10, 35, 47, 92, 46
KEY_BASE = np.uint64(0x9E3779B97F4A7C15)
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
def scan_tokens(data, codes, classes, word, name_first, digit_first, keep_keys, placeholders):
    """Tokens of text with ``\\n`` line breaks, with their hashes.

    ``data`` holds the text's bytes (ASCII) or code points, ``codes`` the index of each in the
    character tables (``data`` itself, except for characters past the tables); ``classes`` maps each to SPACE,
    LETTER ([A-Za-z_]), DIGIT ([0-9]), OTHER_DIGIT (other decimals) or another class, ``word``
    to whether ``\\w`` matches it. A line is cut at its first ``#`` or ``//``; a name is a letter
    and the letters and digits after it; a number a decimal and the ``\\w`` characters and dots
    after it; a string a quote up to its closing quote; any other character is a token of its
    own.

    Returns ``(starts, ends, keys, lines, raw, norm, is_word)``. A token's key is
    ``sum c_i * base**i`` mod 2**64 over its characters and its hash the key mixed by
    MurmurHash3's finaliser (``token_scan.token_hash`` in Python). Its normalised hash replaces
    a token whose first character is a letter or ``_`` (``name_first``) by ``ID`` unless its key
    is in the sorted ``keep_keys``, one starting with a digit (``digit_first``) by ``NUM``, a
    string by ``STR`` (``placeholders`` holds the hashes of those three). ``is_word``: the token
    starts with [A-Za-z_] (BM25 indexes it).
    """
    n = len(data)
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    keys = np.empty(n, dtype=np.uint64)
    lines = np.empty(n, dtype=np.int64)
    raw = np.empty(n, dtype=np.uint64)
    norm = np.empty(n, dtype=np.uint64)
    is_word = np.empty(n, dtype=np.bool_)
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
        kind = classes[codes[i]]
        if kind == SPACE:
            i += 1
            continue
        start = i
        i += 1
        if kind == LETTER:
            while i < n and (classes[codes[i]] == LETTER or classes[codes[i]] == DIGIT):
                i += 1
        elif kind in (DIGIT, OTHER_DIGIT):
            while i < n and (word[codes[i]] or data[i] == _DOT):
                i += 1
        elif c == 34 or c == 39:  # a quote: a whole literal, or a token of its own
            end = _string_end(data, start, n)
            if end > 0:
                i = end
        key = np.uint64(0)
        power = np.uint64(1)
        for j in range(start, i):
            key += np.uint64(data[j]) * power
            power *= KEY_BASE
        hashed = fmix64(key)
        first = codes[start]
        if name_first[first]:
            at = np.searchsorted(keep_keys, key)
            kept = at < len(keep_keys) and keep_keys[at] == key
            normalised = hashed if kept else placeholders[0]
        elif digit_first[first]:
            normalised = placeholders[1]
        elif c == 34 or c == 39:
            normalised = placeholders[2]
        else:
            normalised = hashed
        starts[count] = start
        ends[count] = i
        keys[count] = key
        lines[count] = line
        raw[count] = hashed
        norm[count] = normalised
        is_word[count] = kind == LETTER
        count += 1
    return (
        starts[:count],
        ends[:count],
        keys[:count],
        lines[:count],
        raw[:count],
        norm[:count],
        is_word[:count],
    )


@njit(cache=True, nogil=True)
def _slot_of(table_keys, table_ids, bits, key):
    """The slot holding ``key`` in an open-addressing table (linear probing), or the empty slot
    where it would go (its id is -1)."""
    mask = len(table_ids) - 1
    slot = np.int64((key * _SLOT_MULTIPLIER) >> np.uint64(64 - bits))
    while table_ids[slot] >= 0 and table_keys[slot] != key:
        slot = (slot + 1) & mask
    return slot


@njit(cache=True, nogil=True)
def table_find(table_keys, table_ids, bits, keys):
    """Ids of ``keys`` in an open-addressing table (linear probing), -1 where absent."""
    out = np.empty(len(keys), dtype=np.int64)
    for k in range(len(keys)):
        out[k] = table_ids[_slot_of(table_keys, table_ids, bits, keys[k])]
    return out


@njit(cache=True, nogil=True)
def table_insert(table_keys, table_ids, bits, keys, ids):
    """Insert distinct keys that are not in the table yet (the table has room for them)."""
    for k in range(len(keys)):
        slot = _slot_of(table_keys, table_ids, bits, keys[k])
        table_keys[slot] = keys[k]
        table_ids[slot] = ids[k]


@njit(cache=True, nogil=True)
def first_occurrences(keys):
    """Number equal keys by first occurrence: ``(rank of each key, position of each rank's
    first occurrence)``, through an open-addressing table at most half full."""
    n = len(keys)
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    table_keys = np.empty(1 << bits, dtype=np.uint64)
    table_ids = np.full(1 << bits, -1, dtype=np.int64)
    ranks = np.empty(n, dtype=np.int32)
    firsts = np.empty(n, dtype=np.int64)
    count = 0
    for k in range(n):
        slot = _slot_of(table_keys, table_ids, bits, keys[k])
        if table_ids[slot] < 0:
            table_keys[slot] = keys[k]
            table_ids[slot] = count
            firsts[count] = k
            count += 1
        ranks[k] = table_ids[slot]
    return ranks, firsts[:count]


@njit(cache=True, nogil=True)
def minhash_into(hashes, offsets, a, b, out):
    """MinHash of each set (datasketch's ``affine32`` scheme) written into ``out`` rows.

    Set ``s`` is ``hashes[offsets[s]:offsets[s + 1]]`` (uint32 shingle hashes); each is mixed
    with MurmurHash3's 32-bit finaliser, then permuted by ``(a * h + b) mod 2**32``. Rows of
    empty sets are left as they are.
    """
    num_perm = len(a)
    for s in range(len(offsets) - 1):
        row = out[s]
        for idx in range(offsets[s], offsets[s + 1]):
            # 32-bit arithmetic throughout: the compiler keeps it in 16-lane vector registers.
            h = np.uint32(hashes[idx])
            h ^= h >> np.uint32(16)
            h = np.uint32(h * np.uint32(0x85EBCA6B))
            h ^= h >> np.uint32(13)
            h = np.uint32(h * np.uint32(0xC2B2AE35))
            h ^= h >> np.uint32(16)
            for p in range(num_perm):
                value = np.uint32(a[p] * h + b[p])
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


@njit(cache=True, nogil=True)
def normalize_lines(data, solid, n_lines):
    """Text with ``\n`` breaks only, normalised as ``" ".join(text.split())``.

    ``data`` holds the text's bytes (ASCII) or code points, ``solid`` maps each to whether
    ``str.split()`` keeps it. Returns ``(kept, offsets)``: the normalised characters, and for each line (and one past the last) the normalised offset where it
    starts (a word counts its separator before it; capped at the normalised length).
    """
    n = len(data)
    last_solid = n - 1
    while last_solid >= 0 and not solid[data[last_solid]]:
        last_solid -= 1
    kept = np.empty(n, dtype=data.dtype)
    offsets = np.zeros(n_lines + 1, dtype=np.int64)
    k = 0
    count = 0
    line = 0
    previous_solid = False
    for i in range(n):
        c = data[i]
        is_solid = solid[c]
        if is_solid:
            kept[k] = c
            k += 1
            count += 1 if previous_solid else 2
        elif previous_solid and i < last_solid:
            kept[k] = 32  # one space for the whole run of whitespace after a word
            k += 1
        previous_solid = is_solid
        if c == _NEWLINE and line + 1 < n_lines:
            line += 1
            offsets[line] = count
    offsets[n_lines] = count
    for line in range(n_lines + 1):
        offsets[line] = min(offsets[line], k)
    return kept[:k], offsets


@njit(cache=True, nogil=True)
def fmix64(h):
    """MurmurHash3's 64-bit finaliser of a uint64."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(cache=True, nogil=True)
def tagged_band_keys(signatures, bands, rows, base):
    """LSH band keys of many signatures, tagged with their band, as one flat array.

    ``signatures`` is a ``(n, num_perm)`` uint32 array; band ``b`` of signature ``i`` is hashed
    as the polynomial of its ``rows`` values in ``base`` (mod 2**64) mixed by MurmurHash3's
    finaliser, then shifted right to make room for ``b`` in the top bits. Key ``b * n + i``
    (band-major): one sorted array holds every band, and a query searches its own keys in it.
    """
    n = signatures.shape[0]
    bits = 1
    while (1 << bits) < bands:
        bits += 1
    out = np.empty(bands * n, dtype=np.uint64)
    for b in range(bands):
        tag = np.uint64(b) << np.uint64(64 - bits)
        for i in range(n):
            acc = np.uint64(0)
            for j in range(rows):
                acc = acc * base + np.uint64(signatures[i, b * rows + j])
            out[b * n + i] = (fmix64(acc) >> np.uint64(bits)) | tag
    return out


@njit(cache=True, nogil=True)
def chunk_shingle_keys(hashes, bounds, size, multiplier):
    """Shingles of each chunk's token run as uint64 keys ``chunk << 32 | shingle hash``.

    Chunk ``c`` owns tokens ``hashes[bounds[c]:bounds[c + 1]]`` (uint64 token hashes); a shingle
    is ``size`` consecutive tokens (a shorter run is one shingle of all its tokens), hashed as
    the polynomial of its token hashes in ``multiplier``, mixed by MurmurHash3's 64-bit
    finaliser, high 32 bits kept. No shingle crosses a chunk border. (Sorting the keys, which
    numpy does faster than compiled loops, gives each chunk's sorted set.)
    """
    n_chunks = len(bounds) - 1
    total = 0
    for c in range(n_chunks):
        length = bounds[c + 1] - bounds[c]
        total += length - size + 1 if length >= size else min(length, 1)
    keys = np.empty(total, dtype=np.uint64)
    pos = 0
    for c in range(n_chunks):
        lo = bounds[c]
        length = bounds[c + 1] - lo
        width = min(size, length)
        count = length - width + 1 if length > 0 else 0
        owner = np.uint64(c) << np.uint64(32)
        for j in range(count):
            acc = np.uint64(0)
            for t in range(width):
                acc = acc * multiplier + hashes[lo + j + t]
            keys[pos] = owner | (fmix64(acc) >> np.uint64(32))
            pos += 1
    return keys


@njit(cache=True, nogil=True)
def _keyword_at(data, p, word, keyword):
    """Whether ``keyword`` (a tuple of codes) starts at ``p`` and ends at a word boundary."""
    n = len(data)
    m = len(keyword)
    if p + m > n:
        return False
    for j in range(m):
        if data[p + j] != keyword[j]:
            return False
    return p + m == n or not (data[p + m] >= len(word) or word[data[p + m]])


_DEF = (100, 101, 102)
_CLASS_KW = (99, 108, 97, 115, 115)
_ASYNC = (97, 115, 121, 110, 99)


@njit(cache=True, nogil=True)
def _head_kind(data, p, word):
    """0 for ``def``/``async def``, 1 for ``class``, 2 for a decorator, -1 for another line."""
    if data[p] == 64:  # "@"
        return 2
    if _keyword_at(data, p, word, _DEF):
        return 0
    if _keyword_at(data, p, word, _CLASS_KW):
        return 1
    n = len(data)
    if p + 5 < n:
        for j in range(5):
            if data[p + j] != _ASYNC[j]:
                return -1
        q = p + 5
        if data[q] != 32 and data[q] != 9:
            return -1
        while q < n and (data[q] == 32 or data[q] == 9):
            q += 1
        if q < n and _keyword_at(data, q, word, _DEF):
            return 0
    return -1


@njit(cache=True, nogil=True)
def python_blocks(data, first, logical, code, indent, word):
    """Chunks of Python code from its lines: ``(starts, ends)``, 1-based inclusive lines.

    A chunk is a function with its decorators (nested code stays in it), the head of a class up
    to its first member, or a class without members; each block closes before the next logical
    line indented no deeper than its head, and ends at the last code line before that.
    ``first``/``indent``/``logical``/``code`` describe each line (see :func:`python_lines`);
    ``word`` maps a character to whether ``\\w`` matches it (characters beyond it count as word).
    """
    n_lines = len(first)
    n_logical = 0
    for line in range(n_lines):
        n_logical += logical[line]
    logical_lines = np.empty(n_logical, dtype=np.int64)
    k = 0
    for line in range(n_lines):
        if logical[line]:
            logical_lines[k] = line
            k += 1
    # Next logical line indented no deeper, for every logical line (a monotonic stack).
    next_le = np.empty(n_logical, dtype=np.int64)
    stack = np.empty(n_logical, dtype=np.int64)
    top = 0
    for j in range(n_logical - 1, -1, -1):
        level = indent[logical_lines[j]]
        while top > 0 and indent[logical_lines[stack[top - 1]]] > level:
            top -= 1
        next_le[j] = stack[top - 1] if top > 0 else n_logical
        stack[top] = j
        top += 1
    # Last code line before each line (-1 before the first).
    last_code = np.empty(n_lines + 1, dtype=np.int64)
    previous = -1
    first_code = -1
    for line in range(n_lines + 1):
        last_code[line] = previous
        if line < n_lines and code[line]:
            previous = line
            if first_code < 0:
                first_code = line
    chunks = np.empty((n_logical, 2), dtype=np.int64)  # start, end line of each closed block
    n_chunks = 0
    blocks = np.empty((n_logical, 5), dtype=np.int64)  # the open blocks, innermost last
    depth = 0
    pending = 0
    expect = -1
    for k in range(n_logical):
        head = logical_lines[k]
        kind = _head_kind(data, first[head], word)
        if kind < 0:
            continue
        depth, n_chunks = _close_blocks(blocks, depth, k, chunks, n_chunks)
        if depth > 0 and blocks[depth - 1, _KIND] == 0:
            continue  # nested code stays in its function
        line = head + 1
        if kind == 2:
            if not (pending and expect == k):
                pending = line
            expect = k + 1
            continue
        start = pending if pending and expect == k else line
        pending = 0
        if depth > 0 and blocks[depth - 1, _HEAD_END] < 0:
            blocks[depth - 1, _HEAD_END] = start - 1  # a class head ends where its first member starts
        close = next_le[k]
        close_line = logical_lines[close] if close < n_logical else n_lines
        last = last_code[close_line]
        blocks[depth, _CLOSE] = close
        blocks[depth, _KIND] = kind
        blocks[depth, _START] = start
        blocks[depth, _HEAD_END] = -1
        blocks[depth, _END] = (last if last >= 0 else first_code) + 1
        depth += 1
    depth, n_chunks = _close_blocks(blocks, depth, n_logical, chunks, n_chunks)
    return chunks[:n_chunks, 0].copy(), chunks[:n_chunks, 1].copy()


# Columns of python_blocks' open blocks: the logical line that closes the block, its kind
# (0 def, 1 class), its first line, where a class head ends (-1: not known yet), its last line.
_CLOSE, _KIND, _START, _HEAD_END, _END = range(5)


@njit(cache=True, nogil=True)
def _close_blocks(blocks, depth, limit, chunks, n_chunks):
    """Turn the open blocks that close at or before logical line ``limit`` into chunks."""
    while depth > 0 and blocks[depth - 1, _CLOSE] <= limit:
        depth -= 1
        start, end = blocks[depth, _START], blocks[depth, _END]
        if blocks[depth, _KIND] == 1 and blocks[depth, _HEAD_END] >= 0:
            end = blocks[depth, _HEAD_END]  # a class with members: its head only
        chunks[n_chunks, 0] = start
        chunks[n_chunks, 1] = max(start, end)
        n_chunks += 1
    return depth, n_chunks


@njit(cache=True, nogil=True)
def window_hashes(codes, window, stride, base):
    """Hashes of the ``window``-character windows of ``codes`` starting every ``stride``.

    A window's hash is the polynomial of its characters in ``base`` (mod 2**64), mixed by
    MurmurHash3's 64-bit finaliser; at stride 1 the polynomial rolls from one window to the next.
    Returns ``(hashes, offsets)``.
    """
    n = len(codes)
    count = (n - window) // stride + 1 if n >= window else 0
    hashes = np.empty(count, dtype=np.uint64)
    offsets = np.empty(count, dtype=np.uint32)
    if count == 0:
        return hashes, offsets
    top = np.uint64(1)  # base ** (window - 1)
    for _ in range(window - 1):
        top *= base
    acc = np.uint64(0)
    for j in range(window):
        acc = acc * base + np.uint64(codes[j])
    for k in range(count):
        start = k * stride
        if k > 0:
            if stride == 1:
                acc = (acc - np.uint64(codes[start - 1]) * top) * base + np.uint64(codes[start + window - 1])
            else:
                acc = np.uint64(0)
                for j in range(start, start + window):
                    acc = acc * base + np.uint64(codes[j])
        hashes[k] = fmix64(acc)
        offsets[k] = start
    return hashes, offsets


@njit(cache=True, nogil=True)
def fill_gaps(starts, ends, solid, window, min_solid):
    """Chunks plus windows of ``window`` lines over the uncovered runs that hold at least
    ``min_solid`` solid lines, sorted by (start, end); lines are 1-based and inclusive.

    ``solid[i]`` tells whether line ``i + 1`` holds a character other than whitespace.
    """
    n = len(solid)
    cover = np.zeros(n + 2, dtype=np.int64)
    for c in range(len(starts)):
        cover[starts[c]] += 1
        cover[min(ends[c] + 1, n + 1)] -= 1
    extra_starts = []
    extra_ends = []
    depth = 0
    run_start = -1
    run_solid = 0
    for line in range(1, n + 2):
        depth += cover[line]
        free = line <= n and depth == 0
        if free:
            if run_start < 0:
                run_start = line
                run_solid = 0
            run_solid += solid[line - 1]
        elif run_start >= 0:
            if run_solid >= min_solid:
                for w in range(run_start, line, window):
                    extra_starts.append(w)
                    extra_ends.append(min(w + window - 1, line - 1))
            run_start = -1
    total = len(starts) + len(extra_starts)
    out_starts = np.empty(total, dtype=np.int64)
    out_ends = np.empty(total, dtype=np.int64)
    for c in range(len(starts)):
        out_starts[c] = starts[c]
        out_ends[c] = ends[c]
    for k in range(len(extra_starts)):
        out_starts[len(starts) + k] = extra_starts[k]
        out_ends[len(starts) + k] = extra_ends[k]
    order = np.argsort(out_starts * (n + 2) + out_ends, kind="mergesort")
    return out_starts[order], out_ends[order]


def warm_up() -> None:
    """Load (or compile) every kernel now, e.g. before forking worker processes that use them."""
    data = np.frombuffer(b"def f(x):\n    return 'a' # c\n", dtype=np.uint8)
    classes = np.zeros(256, dtype=np.int8)
    flags = classes.astype(np.bool_)
    words = np.zeros(1, dtype=np.uint64), np.zeros(3, dtype=np.uint64)
    scan_tokens(data, data, classes, flags, flags, flags, *words)
    wide = data.astype(np.uint32)
    scan_tokens(wide, wide, classes, flags, flags, flags, *words)
    python_lines(data, 2)
    python_lines(data.astype(np.uint32), 2)
    lines = np.zeros(2, dtype=np.int64), np.ones(2, dtype=np.bool_), np.ones(2, dtype=np.bool_)
    python_blocks(data, lines[0], lines[1], lines[2], lines[0], np.ones(1, dtype=np.bool_))
    python_blocks(data.astype(np.uint32), lines[0], lines[1], lines[2], lines[0], np.ones(1, dtype=np.bool_))
    table = np.zeros(4, dtype=np.uint64), np.full(4, -1, dtype=np.int64)
    table_insert(*table, 2, np.ones(1, dtype=np.uint64), np.zeros(1, dtype=np.int64))
    table_find(*table, 2, np.ones(1, dtype=np.uint64))
    first_occurrences(np.ones(2, dtype=np.uint64))
    ones = np.ones(1, dtype=np.uint32)
    minhash_into(ones, np.array([0, 1]), ones, ones, np.zeros((1, 1), dtype=np.uint32))
    tagged_band_keys(np.zeros((1, 2), dtype=np.uint32), 2, 1, KEY_BASE)
    fmix64(np.uint64(1))
    normalize_lines(data, np.ones(256, dtype=np.bool_), 2)
    normalize_lines(data.astype(np.uint32), np.ones(256, dtype=np.bool_), 2)
    chunk_shingle_keys(np.ones(3, dtype=np.uint64), np.array([0, 3]), 5, np.uint64(3))
    for codes in (data, data.astype(np.uint32)):
        window_hashes(codes, 8, 1, np.uint64(3))
    bounds = np.ones(1, dtype=np.int64)
    fill_gaps(bounds, bounds, np.ones(2, dtype=np.bool_), 30, 3)
