"""The BM25 index of a segment, computed with numpy and saved in bm25s's own format.

``bm25s.BM25.index`` counts terms with a ``Counter`` per document and a Python loop over the
vocabulary; for a segment of tens of thousands of chunks that was a large share of the build.
Here the chunks' words arrive as ids of one segment-wide vocabulary and the whole score matrix
is computed in a few numpy operations. The arithmetic follows bm25s step by step (Lucene
variant: float64 intermediate values, float32 scores, ``math.log`` for the idf), so the saved
arrays equal what ``bm25s.BM25().index(...)`` would write, up to the numbering of the vocabulary.
"""

from __future__ import annotations

import math
from itertools import repeat
from pathlib import Path

import numpy as np

__all__ = ["WordVocabulary", "bm25_matrix", "save_bm25"]

# bm25s's defaults (``BM25()``): the parameters of the saved index.
K1 = 1.5
B = 0.75


class WordVocabulary:
    """Segment-wide word -> id table, fed with the distinct words of one file at a time."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []

    def map(self, words: list[str]) -> np.ndarray:
        """Segment ids (int32) of a file's distinct words, adding the new ones."""
        ids, table = self.ids, self.words
        out = np.fromiter(map(ids.get, words, repeat(-1)), dtype=np.int32, count=len(words))
        for i in np.flatnonzero(out < 0).tolist():
            word = words[i]
            known = ids.get(word)  # the same word may repeat in the list
            if known is None:
                known = ids[word] = len(table)
                table.append(word)
            out[i] = known
        return out


def bm25_matrix(word_ids: np.ndarray, doc_lengths: np.ndarray, n_words: int) -> dict:
    """bm25s's score matrix (CSC over words: ``data``, ``indices``, ``indptr``, ``num_docs``).

    Args:
        word_ids: the words of every document, document after document (ids below ``n_words``).
        doc_lengths: number of words of each document.
        n_words: size of the vocabulary.
    """
    n_docs = len(doc_lengths)
    docs = np.repeat(np.arange(n_docs, dtype=np.int64), doc_lengths)
    # One key per (word, document) pair, sorted word-major: the CSC order bm25s writes.
    pairs, tf = np.unique(word_ids.astype(np.int64) * max(n_docs, 1) + docs, return_counts=True)
    word = pairs // max(n_docs, 1)
    doc = pairs - word * max(n_docs, 1)
    df = np.bincount(word, minlength=n_words)
    indptr = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    # Lucene idf, computed per distinct document frequency with math.log as bm25s does.
    values, inverse = np.unique(df, return_inverse=True)
    idf_of = np.array(
        [math.log(1 + (n_docs - int(d) + 0.5) / (int(d) + 0.5)) if d else 0.0 for d in values],
        dtype=np.float32,
    )
    idf = idf_of[inverse.reshape(-1)]
    avg_len = np.asarray(doc_lengths, dtype=np.int64).mean() if n_docs else 0.0
    norm = K1 * ((1 - B) + B * doc_lengths.astype(np.float64) / avg_len)
    tf = tf.astype(np.float32).astype(np.float64)
    scores = (idf[word].astype(np.float64) * (tf / (norm[doc] + tf))).astype(np.float32)
    return {"data": scores, "indices": doc.astype(np.int32), "indptr": indptr, "num_docs": n_docs}


def save_bm25(folder: Path, word_ids: np.ndarray, doc_lengths: np.ndarray, words: list[str]) -> None:
    """Write the BM25 index of the documents (bm25s's files, loadable with ``bm25s.BM25.load``)."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.scores = bm25_matrix(word_ids, doc_lengths, len(words))
    vocab = {word: i for i, word in enumerate(words)}
    if "" not in vocab:
        vocab[""] = len(words)  # bm25s's empty token, outside the matrix
    retriever.vocab_dict = vocab
    retriever.nonoccurrence_array = None
    retriever.save(str(folder))
