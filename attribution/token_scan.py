"""Tokens of source text found by one compiled pass, exactly as the token regex finds them.

:func:`attribution.file_tokens.file_tokens` tokenises every corpus file. A regular expression
creates one string object per token; here :func:`attribution.kernels.scan_tokens` walks the
characters once, classifying each with a table, and gives every token a 64-bit polynomial key,
its hash and the hash of its identifier-normalised form, so no ``str`` is made per token. The
character tables cover the Basic Multilingual Plane; the few distinct characters beyond it in a
text get rows of their own appended for that text.

A token's hash is :func:`token_hash`: the polynomial of its code points in a fixed odd base
(mod 2**64), mixed by MurmurHash3's 64-bit finaliser; the compiled scan and the Python function
give the same value. Normalisation (:func:`normalize_token`) maps names to ``ID`` (keywords and
a few ubiquitous builtins, :data:`KEEP_WORDS`, stay), numbers to ``NUM`` and strings to ``STR``.

The rules reproduce, per line, :func:`attribution.shingles.code_tokens` (its regular
expression is the tests' reference): a line is cut at its first ``#`` or ``//``; a name is ``[A-Za-z_][A-Za-z_0-9]*``; a number is a
decimal digit and every ``\\w`` or ``.`` after it; a string is a quote up to the next unescaped
equal quote on the (cut) line; any other non-space character is a token of its own.
"""

from __future__ import annotations

import functools
import keyword
import string
from dataclasses import dataclass

import numpy as np

from attribution import kernels

__all__ = [
    "Tokens",
    "scan_tokens",
    "word_table",
    "KEEP_WORDS",
    "normalize_token",
    "text_key",
    "token_hash",
]


# Words kept as themselves when identifiers are normalised: the keywords of the common languages
# and a few ubiquitous builtins. Everything else that looks like a name becomes "ID".
KEEP_WORDS = (
    frozenset(keyword.kwlist)
    | frozenset(getattr(keyword, "softkwlist", []))
    | {
        "self",
        "cls",
        "print",
        "len",
        "range",
        "int",
        "str",
        "float",
        "list",
        "dict",
        "set",
        "tuple",
        "function",
        "var",
        "let",
        "const",
        "new",
        "this",
        "null",
        "undefined",
        "void",
        "static",
        "public",
        "private",
        "protected",
        "class",
        "struct",
        "enum",
        "interface",
        "extends",
        "implements",
        "switch",
        "case",
        "default",
        "do",
        "typeof",
        "instanceof",
        "throw",
        "throws",
        "catch",
        "finally",
        "package",
        "func",
        "go",
        "defer",
        "fn",
        "impl",
        "mut",
        "pub",
        "use",
        "match",
        "where",
        "true",
        "false",
        "nil",
    }
)


_TABLE_SIZE = 0x10000


def _char_tables(chars: list[str]) -> tuple[np.ndarray, ...]:
    """Per character: class (as ``\\s``, ``[A-Za-z_]``, ``[0-9]``, ``\\d`` see them), whether
    ``\\w`` matches it, whether a token starting with it is a name (a letter or ``_``) or a
    number (a digit) for normalisation."""
    classes = np.full(len(chars), 3, dtype=np.int8)
    classes[[c.isdecimal() for c in chars]] = kernels.OTHER_DIGIT
    classes[[c.isspace() for c in chars]] = kernels.SPACE
    letters = np.array([c in _ASCII_LETTERS for c in chars], dtype=np.bool_)
    classes[letters] = kernels.LETTER
    classes[[c in string.digits for c in chars]] = kernels.DIGIT
    word = np.array([c.isalnum() or c == "_" for c in chars], dtype=np.bool_)
    name_first = np.array([c.isalpha() or c == "_" for c in chars], dtype=np.bool_)
    digit_first = np.array([c.isdigit() for c in chars], dtype=np.bool_)
    return classes, word, name_first, digit_first


_ASCII_LETTERS = frozenset(string.ascii_letters + "_")


@functools.cache
def _tables() -> tuple[np.ndarray, ...]:
    """The character tables of the Basic Multilingual Plane (see ``_char_tables``)."""
    return _char_tables([chr(code) for code in range(_TABLE_SIZE)])


def _with_astral(data: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Table indices and tables for code points past the BMP: each distinct one gets a row
    appended to the BMP tables (a text holds a handful of them)."""
    beyond = data >= _TABLE_SIZE
    astral = np.unique(data[beyond])
    extra = _char_tables([chr(code) for code in astral.tolist()])
    tables = tuple(np.concatenate((base, more)) for base, more in zip(_tables(), extra, strict=True))
    codes = data.copy()
    codes[beyond] = _TABLE_SIZE + np.searchsorted(astral, data[beyond])
    return codes, tables


def word_table() -> np.ndarray:
    """Whether ``\\w`` matches each BMP character."""
    return _tables()[1]


@dataclass
class Tokens:
    """Tokens of a text: offsets, key, line and hashes of each."""

    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    keys: np.ndarray  # uint64: equal for equal tokens
    lines: np.ndarray  # int64, 0-based
    raw: np.ndarray  # uint64: token_hash of the token
    norm: np.ndarray  # uint64: token_hash of normalize_token(token)
    is_word: np.ndarray  # bool: starts with [A-Za-z_] (a word BM25 indexes)


_MASK = 2**64 - 1
_KEY_BASE = int(kernels.KEY_BASE)


def text_key(text: str) -> int:
    """``sum c_i * base**i`` mod 2**64 over the code points of ``text`` (the scan's token key)."""
    key, power = 0, 1
    for char in text:
        key = (key + ord(char) * power) & _MASK
        power = (power * _KEY_BASE) & _MASK
    return key


def token_hash(text: str) -> int:
    """The 64-bit hash of a token, as the compiled scan computes it."""
    return int(kernels.fmix64(np.uint64(text_key(text))))


def normalize_token(token: str) -> str:
    """``ID`` for a name (kept words stay), ``NUM`` for a number, ``STR`` for a string."""
    first = token[0]
    if first.isalpha() or first == "_":
        return token if token in KEEP_WORDS else "ID"
    if first.isdigit():
        return "NUM"
    return "STR" if first in "\"'" else token


@functools.cache
def _normalisation() -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys of the kept words, and the hashes of ``ID``, ``NUM`` and ``STR``."""
    keep = np.array(sorted(text_key(w) for w in KEEP_WORDS), dtype=np.uint64)
    return keep, np.array([token_hash(p) for p in ("ID", "NUM", "STR")], dtype=np.uint64)


def scan_tokens(text: str) -> Tokens:
    """Tokens of a text with ``\\n`` line breaks only, with their keys and hashes.

    Two distinct tokens share a key with probability about 2**-64 (none among the ~10**6
    distinct tokens of the standard library and the installed packages).
    """
    if text.isascii():
        data = codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        tables = _tables()
    else:
        data = codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        tables = _tables()
        if data.max() >= _TABLE_SIZE:
            codes, tables = _with_astral(data)
    return Tokens(*kernels.scan_tokens(data, codes, *tables, *_normalisation()))
