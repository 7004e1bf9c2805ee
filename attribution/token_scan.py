"""Tokens of source text found by one compiled pass, exactly as the token regex finds them.

:func:`attribution.shingles.line_token_ids` tokenises every corpus file. A regular expression
creates one string object per token, and looking each up in a vocabulary hashes it again; here
:func:`attribution.kernels.scan_tokens` walks the characters once, classifying each with a
table, and gives every token a 64-bit polynomial key, which a
:class:`attribution.key_table.KeyTable` maps to a vocabulary id. Texts with characters beyond
the Basic Multilingual Plane are left to the regular expression (the tables cover the BMP).

The rules reproduce ``_SKIPPED_RE`` followed by ``_LINE_TOKEN_RE`` of :mod:`attribution.shingles`:
a line is cut at its first ``#`` or ``//``; a name is ``[A-Za-z_][A-Za-z_0-9]*``; a number is a
decimal digit and every ``\\w`` or ``.`` after it; a string is a quote up to the next unescaped
equal quote on the (cut) line; any other non-space character is a token of its own.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass

import numpy as np

from attribution import kernels

__all__ = ["Tokens", "scan_tokens", "word_table"]


_TABLE_SIZE = 0x10000


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Class (as ``\\s``, ``[A-Za-z_]``, ``[0-9]``, ``\\d`` see them) and ``\\w`` of each BMP character."""
    chars = [chr(code) for code in range(_TABLE_SIZE)]
    classes = np.full(_TABLE_SIZE, 3, dtype=np.int8)
    classes[[c.isdecimal() for c in chars]] = kernels.OTHER_DIGIT
    classes[[c.isspace() for c in chars]] = kernels.SPACE
    classes[[ord(c) for c in string.ascii_letters + "_"]] = kernels.LETTER
    classes[[ord(c) for c in string.digits]] = kernels.DIGIT
    word = np.array([c.isalnum() or c == "_" for c in chars], dtype=np.bool_)
    return classes, word


def word_table() -> np.ndarray:
    """Whether ``\\w`` matches each BMP character."""
    return _tables()[1]


@dataclass
class Tokens:
    """Tokens of a text: start offset, end offset, 64-bit key and 0-based line of each."""

    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    keys: np.ndarray  # uint64: equal for equal tokens
    lines: np.ndarray  # int64


def scan_tokens(text: str) -> Tokens | None:
    """Tokens of a text with ``\\n`` line breaks only (as ``line_token_ids`` reads them).

    None when the text has characters beyond U+FFFF. A token's key is ``sum c_i * base**i``
    mod 2**64 over its characters: two distinct tokens share a key with probability about
    2**-64 (none among the ~10**6 distinct tokens of the standard library and the installed
    packages).
    """
    if text.isascii():
        data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    else:
        data = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        if data.max() >= _TABLE_SIZE:
            return None
    return Tokens(*kernels.scan_tokens(data, *_tables()))
