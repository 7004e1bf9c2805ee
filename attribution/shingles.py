"""Code tokens, k-gram shingles and MinHash signatures shared by attribution and training.

The same fingerprints serve two jobs: near-duplicate *search* in the provenance index and
near-duplicate *removal* when the training corpus is built (BigCode's recipe: 5-gram token
shingles, MinHash, LSH at Jaccard 0.7).
"""

from __future__ import annotations

import functools
import keyword
import operator
import re
from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash
from datasketch.minhash import _fmix

from attribution import kernels
from attribution.key_table import KeyTable
from attribution.token_scan import Tokens, scan_tokens

__all__ = [
    "code_tokens",
    "normalized_tokens",
    "shingles",
    "minhash_of",
    "signature_array",
    "token_hashes",
    "shingle_hashes",
    "minhash_signatures",
    "DEFAULT_NUM_PERM",
    "DEFAULT_SHINGLE_SIZE",
    "SHINGLE_MULTIPLIER",
]

DEFAULT_NUM_PERM = 256
DEFAULT_SHINGLE_SIZE = 5

# Identifiers, numbers, string literals (single-line), and single punctuation characters.
_TOKEN_RE = re.compile(
    r"""[A-Za-z_][A-Za-z_0-9]*"""
    r"""|\d[\w.]*"""
    r"""|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
    r"""|[^\sA-Za-z_0-9]"""
)

# Words kept as themselves when identifiers are normalised: the keywords of the common languages
# and a few ubiquitous builtins. Everything else that looks like a name becomes "ID".
_KEEP_WORDS = (
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

_COMMENT_RE = re.compile(r"(?m)(?:#|//).*$")


def code_tokens(text: str, *, strip_comments: bool = True) -> list[str]:
    """Split source text into tokens (names, numbers, strings, punctuation).

    Line comments (``#`` and ``//``) are dropped by default, so copies that lost their comments
    still share their shingles.
    """
    if strip_comments:
        text = _COMMENT_RE.sub("", text)
    return _TOKEN_RE.findall(text)


def normalized_tokens(tokens: Sequence[str]) -> list[str]:
    """Replace identifiers by ``ID``, numbers by ``NUM`` and strings by ``STR``.

    The normalised stream survives renaming of identifiers (as MOSS and JPlag fingerprint it).
    """
    out: list[str] = []
    for tok in tokens:
        first = tok[0]
        if first.isalpha() or first == "_":
            out.append(tok if tok in _KEEP_WORDS else "ID")
        elif first.isdigit():
            out.append("NUM")
        elif first in "\"'":
            out.append("STR")
        else:
            out.append(tok)
    return out


def shingles(tokens: Sequence[str], size: int = DEFAULT_SHINGLE_SIZE) -> set[bytes]:
    """Return the set of ``size``-token shingles, each encoded as bytes.

    A sequence shorter than ``size`` yields one shingle holding all its tokens (empty input: no
    shingles).
    """
    if not tokens:
        return set()
    if len(tokens) < size:
        return {" ".join(tokens).encode("utf-8")}
    return {" ".join(tokens[i : i + size]).encode("utf-8") for i in range(len(tokens) - size + 1)}


def minhash_of(items: Iterable[bytes], num_perm: int = DEFAULT_NUM_PERM, seed: int = 1) -> LeanMinHash:
    """MinHash signature (datasketch) of a set of shingles; compact and serialisable."""
    mh = MinHash(num_perm=num_perm, seed=seed)
    batch = list(items)
    if batch:
        mh.update_batch(batch)
    return LeanMinHash(mh)


def signature_array(mh: LeanMinHash) -> np.ndarray:
    """The signature's hash values as a uint64 array (for storage without pickle)."""
    return np.asarray(mh.hashvalues, dtype=np.uint64)


# --- Vectorised fingerprints -------------------------------------------------------------------
#
# The index fingerprints every chunk of a corpus, so shingles are hashed as integers instead of
# byte strings: each token is hashed once (xxh3), a shingle's hash is a polynomial of its tokens'
# hashes, and the MinHash permutations of datasketch's default ``affine32`` scheme are applied to
# all shingles of many chunks in one compiled loop. ``minhash_signatures`` returns exactly what
# ``MinHash(num_perm, seed, hashfunc=<the shingle hash>).update_batch`` would.


class _HashCache(dict):
    """token -> 64-bit hash, filled on first use (looked up from C through ``map``)."""

    def __init__(self, transform=None) -> None:
        super().__init__()
        self.transform = transform

    def __missing__(self, token: str) -> int:
        if len(self) > _TOKEN_CACHE_LIMIT:
            self.clear()
        text = self.transform(token) if self.transform else token
        value = self[token] = xxhash.xxh3_64_intdigest(text.encode("utf-8", errors="surrogatepass"))
        return value


def _normalized_token(token: str) -> str:
    """One token as :func:`normalized_tokens` maps it."""
    first = token[0]
    if first.isalpha() or first == "_":
        return token if token in _KEEP_WORDS else "ID"
    if first.isdigit():
        return "NUM"
    return "STR" if first in "\"'" else token


_TOKEN_CACHE_LIMIT = 2_000_000
_RAW_HASHES = _HashCache()
_NORM_HASHES = _HashCache(_normalized_token)
SHINGLE_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # a shingle hash is a polynomial in this
_PERMUTATIONS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def token_hashes(tokens: Sequence[str], *, normalized: bool = False) -> np.ndarray:
    """64-bit hash (xxh3) of each token, as a uint64 array.

    With ``normalized``, each token is first normalised as :func:`normalized_tokens` does, so
    ``token_hashes(t, normalized=True)`` equals ``token_hashes(normalized_tokens(t))``.
    """
    cache = _NORM_HASHES if normalized else _RAW_HASHES
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def shingle_hashes(hashes: np.ndarray, size: int = DEFAULT_SHINGLE_SIZE) -> np.ndarray:
    """32-bit hash of every ``size``-token shingle of a token-hash array (with repeats, in order).

    Like :func:`shingles`, a sequence shorter than ``size`` yields one shingle of all its tokens.
    """
    n = len(hashes)
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    width = min(size, n)
    count = n - width + 1
    acc = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):
            acc = acc * SHINGLE_MULTIPLIER + hashes[j : j + count]
        mixed = _fmix(acc, 64)
    return (mixed >> np.uint64(32)).astype(np.uint32)


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    key = (num_perm, seed)
    if key not in _PERMUTATIONS:
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        _PERMUTATIONS[key] = (np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32))
    return _PERMUTATIONS[key]


def minhash_signatures(
    hashes: np.ndarray, offsets: np.ndarray, num_perm: int = DEFAULT_NUM_PERM, seed: int = 1
) -> np.ndarray:
    """MinHash signatures of many sets at once (datasketch's ``affine32`` scheme).

    Args:
        hashes: uint32 shingle hashes of all sets, concatenated.
        offsets: int array of ``n + 1`` boundaries: set ``i`` is ``hashes[offsets[i]:offsets[i+1]]``.
        num_perm: number of permutations.
        seed: permutation seed (as datasketch's ``MinHash(seed=...)``).

    Returns:
        A ``(n, num_perm)`` uint32 array; an empty set gets the all-``0xFFFFFFFF`` signature.
    """
    a, b = _permutations(num_perm, seed)
    n_sets = len(offsets) - 1
    out = np.full((n_sets, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    if n_sets and len(hashes):
        hashes = np.ascontiguousarray(hashes, dtype=np.uint32)
        kernels.minhash_into(hashes, np.asarray(offsets, dtype=np.int64), a, b, out)
    return out


# --- Token ids of whole texts ------------------------------------------------------------------
#
# A corpus file is tokenised once, line breaks kept as tokens so every token knows its line, and
# each distinct token gets an id in a per-process vocabulary that holds its raw and normalised
# hashes and its BM25 word: per-token work after that is numpy gathers.

# The tokens of _TOKEN_RE and line breaks; strings unrolled and quantifiers possessive (same
# matches, less backtracking).
_LINE_TOKEN_RE = re.compile(
    r"""[A-Za-z_][A-Za-z_0-9]*+"""
    r"""|\d[\w.]*+"""
    r"""|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'"""
    r"""|[^\sA-Za-z_0-9]|\n"""
)
# Comments (as _COMMENT_RE) and the indentation of every line: neither holds a token, and
# removing the indentation spares the tokeniser most of the whitespace it would skip.
_SKIPPED_RE = re.compile(r"(?m)^[ \t]+|(?:#|//).*$")
_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_VOCAB_LIMIT = 2_000_000


class _Vocabulary:
    """token -> id, with per id: raw hash, normalised hash, BM25 word ("" for punctuation)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []
        self.raw = np.zeros(4096, dtype=np.uint64)
        self.norm = np.zeros(4096, dtype=np.uint64)
        self.is_word = np.zeros(4096, dtype=bool)
        self.key_ids = KeyTable()  # token key (of scan_tokens) -> id
        self._scratch = np.empty(0, dtype=np.int32)
        self._add(["\n"])  # id 0: the line break

    def _add(self, tokens: list[str]) -> None:
        """Give ids to new distinct tokens, hashing them in bulk."""
        start, end = len(self.words), len(self.words) + len(tokens)
        if end > len(self.raw):
            size = max(end, 2 * len(self.raw))
            for name in ("raw", "norm", "is_word"):
                old = getattr(self, name)
                grown = np.zeros(size, dtype=old.dtype)
                grown[: len(old)] = old
                setattr(self, name, grown)
        self.ids.update(zip(tokens, range(start, end), strict=True))
        encoded = map(functools.partial(str.encode, encoding="utf-8", errors="surrogatepass"), tokens)
        raw = np.fromiter(map(xxhash.xxh3_64_intdigest, encoded), dtype=np.uint64, count=len(tokens))
        self.raw[start:end] = raw
        self.norm[start:end] = _normalized_hashes(tokens, raw)
        words = list(map(str.lower, tokens))
        codes = _first_codes(tokens)
        is_word = _WORD_START_ASCII[np.minimum(codes, 127)] & (codes < 128)
        for i in np.flatnonzero(~is_word).tolist():
            words[i] = ""
        self.words.extend(words)
        self.is_word[start:end] = is_word

    def scratch(self) -> np.ndarray:
        """An int32 array of -1, one entry per id (for :func:`kernels.first_occurrence_ranks`)."""
        if len(self._scratch) < len(self.words):
            self._scratch = np.full(len(self.raw), -1, dtype=np.int32)
        return self._scratch

    def lookup(self, tokens: list[str]) -> np.ndarray:
        out = np.fromiter(map(self.ids.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        missing = np.flatnonzero(out < 0).tolist()
        if missing:
            unseen = list(map(tokens.__getitem__, missing))
            self._add(list(dict.fromkeys(unseen)))  # distinct, in order of first sight
            out[missing] = np.fromiter(map(self.ids.__getitem__, unseen), dtype=np.int64, count=len(unseen))
        return out

    def lookup_keys(self, text: str, tokens: Tokens) -> np.ndarray:
        """Ids of tokens found by :func:`scan_tokens`, looked up by key; new tokens are added."""
        ids = self.key_ids.find(tokens.keys)
        missing = np.flatnonzero(ids < 0)
        if len(missing):
            distinct, first, inverse = np.unique(tokens.keys[missing], return_index=True, return_inverse=True)
            first = missing[first]
            order = np.argsort(first)  # new tokens get ids in order of first sight, as in lookup()
            starts, ends = tokens.starts[first[order]].tolist(), tokens.ends[first[order]].tolist()
            new = np.empty(len(distinct), dtype=np.int64)
            new[order] = self.lookup([text[a:b] for a, b in zip(starts, ends, strict=True)])
            self.key_ids.add(distinct, new)
            ids[missing] = new[inverse.reshape(-1)]
        return ids


_WORD_START_ASCII = np.array([chr(code) in _WORD_START for code in range(128)], dtype=bool)


def _first_codes(tokens: list[str]) -> np.ndarray:
    """Code point of each token's first character."""
    firsts = "".join(map(operator.itemgetter(0), tokens))
    return np.frombuffer(firsts.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


@functools.cache
def _alpha_digit_tables() -> tuple[np.ndarray, np.ndarray]:
    """``str.isalpha`` (or ``_``) and ``str.isdigit`` of each BMP character."""
    chars = [chr(code) for code in range(0x10000)]
    name = np.array([c.isalpha() or c == "_" for c in chars], dtype=bool)
    return name, np.array([c.isdigit() for c in chars], dtype=bool)


def _normalized_hashes(tokens: list[str], raw: np.ndarray) -> np.ndarray:
    """Hashes of the tokens normalised as :func:`_normalized_token` does, from their raw hashes."""
    codes = _first_codes(tokens)
    name_table, digit_table = _alpha_digit_tables()
    bmp = np.minimum(codes, 0xFFFF)
    name, digit = name_table[bmp], digit_table[bmp]
    for i in np.flatnonzero(codes > 0xFFFF).tolist():
        first = tokens[i][0]
        name[i], digit[i] = first.isalpha(), first.isdigit()
    keep = np.fromiter(map(_KEEP_WORDS.__contains__, tokens), dtype=bool, count=len(tokens))
    out = raw.copy()  # punctuation and kept words stay themselves
    out[name & ~keep] = _RAW_HASHES["ID"]
    number = ~name & digit
    out[number] = _RAW_HASHES["NUM"]
    out[~name & ~number & ((codes == ord('"')) | (codes == ord("'")))] = _RAW_HASHES["STR"]
    return out


_VOCAB = _Vocabulary()


def line_token_ids(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Tokens of a text (as :func:`code_tokens`) as vocabulary ids, with the 0-based line of each.

    ``text`` must use ``\\n`` line breaks only. Ids are valid for :func:`ids_hashes` and
    :func:`ids_words` of the same process until the next call.
    """
    global _VOCAB
    if len(_VOCAB.words) > _VOCAB_LIMIT:
        _VOCAB = _Vocabulary()
    tokens = scan_tokens(text)
    if tokens is not None:
        return _VOCAB.lookup_keys(text, tokens), tokens.lines
    ids = _VOCAB.lookup(_LINE_TOKEN_RE.findall(_SKIPPED_RE.sub("", text)))
    breaks = ids == 0
    lines = np.cumsum(breaks)
    keep = ~breaks
    return ids[keep], lines[keep]


def ids_hashes(ids: np.ndarray, *, normalized: bool = False) -> np.ndarray:
    """Token hashes of ids from :func:`line_token_ids` (equal to :func:`token_hashes`)."""
    return (_VOCAB.norm if normalized else _VOCAB.raw)[ids]


def ids_words(ids: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """BM25 words (lower-cased identifiers and keywords) of ids.

    Returns ``(distinct words, index into them of each word token, mask of the word tokens)``;
    a word may repeat in the list (``Name`` and ``name``), each token's index is still right.
    Words are listed in order of first occurrence, so the result does not depend on the ids
    this process's vocabulary happened to give them (an index build is reproducible).
    """
    mask = _VOCAB.is_word[ids]
    distinct, ranks = kernels.first_occurrence_ranks(ids[mask], _VOCAB.scratch())
    words = _VOCAB.words
    return list(map(words.__getitem__, distinct.tolist())), ranks, mask
