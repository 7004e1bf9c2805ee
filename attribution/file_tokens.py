"""The token stream of one text as the index fingerprints it: hashes, lines and BM25 words.

Every token's raw and identifier-normalised hashes come straight from its characters
(:func:`attribution.token_scan.token_hash`), so no vocabulary is shared between files or
processes: a worker process fingerprints a file the same way whatever it saw before, and the
only strings made are the distinct words BM25 indexes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attribution import kernels
from attribution.token_scan import scan_tokens

__all__ = ["FileTokens", "file_tokens"]


@dataclass
class FileTokens:
    """Per token of a text: raw and normalised hashes, key, 0-based line, and its BM25 status."""

    raw: np.ndarray  # uint64
    norm: np.ndarray  # uint64
    keys: np.ndarray  # uint64: equal for equal tokens (of this text)
    lines: np.ndarray  # int64
    is_word: np.ndarray  # bool: an identifier or keyword (BM25 indexes it, lower-cased)
    texts: Callable[[np.ndarray], list[str]]  # the texts of the tokens at some indices

    def words(self, picks: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """BM25 words of the tokens ``picks`` (indices, in order).

        Returns ``(distinct words in order of first occurrence, index into them of each word
        token, mask of the word tokens among picks)``; ``Name`` and ``name`` are two entries of
        the same word, each token's index is still right.
        """
        mask = self.is_word[picks]
        chosen = picks[mask]
        ranks, firsts = kernels.first_occurrences(np.ascontiguousarray(self.keys[chosen]))
        words = list(map(str.lower, self.texts(chosen[firsts])))
        return words, ranks, mask


def file_tokens(text: str) -> FileTokens:
    """The tokens of a text with ``\\n`` line breaks only (as :func:`shingles.code_tokens` cuts
    each line), with their hashes and lines."""
    tokens = scan_tokens(text)
    starts, ends = tokens.starts, tokens.ends

    def texts(at: np.ndarray) -> list[str]:
        return [text[a:b] for a, b in zip(starts[at].tolist(), ends[at].tolist(), strict=True)]

    return FileTokens(tokens.raw, tokens.norm, tokens.keys, tokens.lines, tokens.is_word, texts)
