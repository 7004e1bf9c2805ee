"""Code tokens, k-gram shingles and MinHash signatures shared by attribution and training.

The same fingerprints serve two jobs: near-duplicate *search* in the provenance index and
near-duplicate *removal* when the training corpus is built (BigCode's recipe: 5-gram token
shingles, MinHash, LSH at Jaccard 0.7).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash

__all__ = [
    "code_tokens",
    "normalized_tokens",
    "shingles",
    "minhash_of",
    "DEFAULT_NUM_PERM",
    "DEFAULT_SHINGLE_SIZE",
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
_KEEP_WORDS = frozenset(keyword.kwlist) | frozenset(getattr(keyword, "softkwlist", [])) | {
    "self", "cls", "print", "len", "range", "int", "str", "float", "list", "dict", "set", "tuple",
    "function", "var", "let", "const", "new", "this", "null", "undefined", "void", "static",
    "public", "private", "protected", "class", "struct", "enum", "interface", "extends",
    "implements", "switch", "case", "default", "do", "typeof", "instanceof", "throw", "throws",
    "catch", "finally", "package", "func", "go", "defer", "fn", "impl", "mut", "pub", "use",
    "match", "where", "true", "false", "nil",
}

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


def minhash_of(
    items: Iterable[bytes], num_perm: int = DEFAULT_NUM_PERM, seed: int = 1
) -> LeanMinHash:
    """MinHash signature (datasketch) of a set of shingles; compact and serialisable."""
    mh = MinHash(num_perm=num_perm, seed=seed)
    batch = list(items)
    if batch:
        mh.update_batch(batch)
    return LeanMinHash(mh)


def signature_array(mh: LeanMinHash) -> np.ndarray:
    """The signature's hash values as a uint64 array (for storage without pickle)."""
    return np.asarray(mh.hashvalues, dtype=np.uint64)
