"""Fingerprint building blocks: normalisation, windows, chunks, and datasketch-exact signatures."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
from datasketch import MinHash

from attribution.chunking import chunk_text
from attribution.normalize import normalize, window_hashes
from attribution.shingles import code_tokens, minhash_signatures, shingle_hashes, token_hashes

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_normalize_strips_indentation_and_maps_lines() -> None:
    text = "def f(x):\n    return  x +\t1\n\n\n        # note\nprint(  x )\n"
    norm = normalize(text)
    assert norm.text == "def f(x): return x + 1 # note print( x )"
    assert norm.lines[0] == 1 and norm.lines[norm.text.index("return")] == 2
    assert norm.lines[norm.text.index("print")] == 6
    assert normalize(text.replace("    ", "\t")).text == norm.text


def test_query_windows_contain_every_indexed_window() -> None:
    text = normalize((STDLIB / "heapq.py").read_text()).text
    built, offsets = window_hashes(text, 50)
    query, q_offsets = window_hashes(text, 1)
    assert len(query) == len(text) - 49
    assert np.array_equal(query[offsets], built)
    assert len(np.unique(built)) > 0.99 * len(built)  # distinct text, distinct hashes


def test_signatures_equal_datasketch_minhash() -> None:
    tokens = code_tokens((STDLIB / "bisect.py").read_text())
    hashes = shingle_hashes(token_hashes(tokens))
    sets = [np.unique(hashes[:40]), np.unique(hashes[40:41]), np.empty(0, np.uint32), np.unique(hashes[41:])]
    offsets = np.cumsum([0] + [len(s) for s in sets])
    signatures = minhash_signatures(np.concatenate(sets), offsets, num_perm=64, seed=3)
    for row, values in zip(signatures, sets, strict=True):
        reference = MinHash(num_perm=64, seed=3, hashfunc=int)
        reference.update_batch([int(v) for v in values])
        assert np.array_equal(reference.hashvalues, row)


def test_renaming_keeps_normalised_shingles() -> None:
    from attribution.shingles import normalized_tokens

    a = "def area(w, h):\n    total = w * h\n    return total\n"
    b = "def surface(width, height):\n    s = width * height\n    return s\n"
    ha = set(shingle_hashes(token_hashes(normalized_tokens(code_tokens(a)))).tolist())
    hb = set(shingle_hashes(token_hashes(normalized_tokens(code_tokens(b)))).tolist())
    assert ha == hb
    assert set(shingle_hashes(token_hashes(code_tokens(a))).tolist()) != set(
        shingle_hashes(token_hashes(code_tokens(b))).tolist()
    )


def test_chunks_follow_functions_and_classes() -> None:
    text = (STDLIB / "textwrap.py").read_text()
    lines = text.splitlines()
    chunks = chunk_text(text, "textwrap.py")
    starts = {lines[c.start_line - 1].strip().split("(")[0] for c in chunks}
    assert {"class TextWrapper:", "def wrap", "def dedent", "def _split"} <= starts
    assert all(c.start_line <= c.end_line for c in chunks)
    dedent = next(c for c in chunks if lines[c.start_line - 1].startswith("def dedent"))
    assert lines[dedent.end_line - 1].strip() == "return text"


def test_partial_snippets_and_other_languages_chunk() -> None:
    lines = (STDLIB / "textwrap.py").read_text().splitlines()
    snippet = "\n".join(lines[250:300])
    assert chunk_text(snippet, "x.py")  # error-tolerant parse of a cut-out piece
    js = "\n".join(f"var x{i} = {i};" for i in range(70))
    assert [(c.start_line, c.end_line) for c in chunk_text(js, "a.js")] == [(1, 30), (31, 60), (61, 70)]


def test_normalized_token_hashes_equal_hashes_of_normalized_tokens() -> None:
    from attribution.shingles import normalized_tokens

    tokens = code_tokens((STDLIB / "heapq.py").read_text())
    assert np.array_equal(token_hashes(tokens, normalized=True), token_hashes(normalized_tokens(tokens)))


def test_python_blocks_ignore_strings_brackets_and_nested_code() -> None:
    text = '''import os


@decorator(
    arg=1,
)
def first(a,
b):
    """Docstring.
text at column 0 (not code)
"""
    value = [1,
2]

    def inner():
        return a  # ) ] } unbalanced in a comment
    return "def not_a_head(" + value


class Thing(Base):
    x = 1

    @property
    def size(self):
        return 1
    async def later(self): return 2
'''
    lines = text.splitlines()
    spans = [(c.start_line, c.end_line) for c in chunk_text(text, "m.py")]
    assert (4, 17) in spans  # decorators, continued signature, string and list, nested def
    assert (20, 22) in spans  # class head up to its first member (with its decorator)
    assert (23, 25) in spans and (26, 26) in spans
    assert all(lines[s - 1].split("(")[0].strip() != "def inner" for s, _ in spans)


def _reference_shingle_hashes(hashes: np.ndarray, size: int = 5) -> np.ndarray:
    """Shingle hashes by their definition, in numpy: polynomial, MurmurHash3 finaliser, high bits."""
    from datasketch.minhash import _fmix

    from attribution.shingles import SHINGLE_MULTIPLIER

    if len(hashes) == 0:
        return np.empty(0, dtype=np.uint32)
    width = min(size, len(hashes))
    count = len(hashes) - width + 1
    acc = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):
            acc = acc * SHINGLE_MULTIPLIER + hashes[j : j + count]
        return (_fmix(acc, 64) >> np.uint64(32)).astype(np.uint32)


def test_shingle_hashes_equal_their_definition() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 3, 5, 6, 200):
        hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
        assert shingle_hashes(hashes).tolist() == _reference_shingle_hashes(hashes).tolist()
    assert len(shingle_hashes(np.empty(0, dtype=np.uint64))) == 0


def test_fingerprint_sets_equal_per_chunk_reference() -> None:
    from attribution.fingerprint import FingerprintParams, bm25_tokens, fingerprint

    text = (STDLIB / "difflib.py").read_text()
    lines = text.splitlines()
    fp = fingerprint(text, "difflib.py", FingerprintParams())
    assert len(fp.chunk_starts) > 20
    for c, (start, end) in enumerate(zip(fp.chunk_starts, fp.chunk_ends, strict=True)):
        tokens = code_tokens("\n".join(lines[start - 1 : end]))
        assert fp.bm25[c] == bm25_tokens(tokens)
        for stream, normalized in (("raw", False), ("norm", True)):
            expected = np.unique(_reference_shingle_hashes(token_hashes(tokens, normalized=normalized)))
            assert np.array_equal(fp.streams[stream].of(c), expected)
