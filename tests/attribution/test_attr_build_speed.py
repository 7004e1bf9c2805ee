"""The build's fast paths agree with the reference computations they replace."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import bm25s
import numpy as np
import pytest

from attribution.bm25_index import WordVocabulary, bm25_matrix
from attribution.chunking import chunk_text
from attribution.file_tokens import file_tokens
from attribution.key_table import KeyTable
from attribution.lsh import KNOWN_BANDS
from attribution.normalize import normalize, normalized_lines, window_hashes
from attribution.shingles import code_tokens, token_hashes
from attribution.token_scan import scan_tokens

STDLIB = Path(sysconfig.get_paths()["stdlib"])
EDGE_TEXTS = [
    "",
    "   ",
    "a",
    "a\n",
    "\n\n",
    " a  b \n\n  c\t\n",
    "x\r\ny\r\n",
    "é  b\n c",
    "é\u3000b\xa0 c\n  d\u2003\n\u2003",
    "a\x0cb\n",
    "  \n  ",
]


def _stdlib_texts() -> list[str]:
    return [(STDLIB / name).read_text() for name in ("difflib.py", "textwrap.py", "heapq.py", "csv.py")]


@pytest.mark.parametrize("text", EDGE_TEXTS + _stdlib_texts())
def test_normalized_lines_equal_normalize(text: str) -> None:
    lines = text.splitlines()
    norm = normalize(text)
    codes, offsets = normalized_lines(text, lines)
    expected = np.searchsorted(norm.lines, np.arange(1, len(lines) + 2), side="left")
    assert np.array_equal(offsets, expected)
    assert np.array_equal(window_hashes(codes, 50)[0], window_hashes(norm.text, 50)[0])


def test_file_tokens_follow_code_tokens() -> None:
    text = (STDLIB / "textwrap.py").read_text() + "\n  x = 'a # b'  # c\n\ty//z 'open\n"
    tokens = file_tokens(text)
    expected = [t for line in text.split("\n") for t in code_tokens(line)]
    assert tokens.texts(np.arange(len(tokens.raw))) == expected
    assert tokens.is_word.tolist() == [t[0].isalpha() or t[0] == "_" for t in expected]
    assert np.all(np.diff(tokens.lines) >= 0)
    words, index, mask = tokens.words(np.arange(len(expected)))
    assert [words[i] for i in index] == [t.lower() for t, w in zip(expected, mask, strict=True) if w]


TOKEN_TEXTS = EDGE_TEXTS + [
    "x = 'a # b'  # c\n\ty//z 'open\n",
    "s = \"http://x\" + 'it\\'s' + \"\\#\" + '\\//'\n",
    "a.b 1.5e+3 1..2 x1.y .5 1.real a.1.b\n",
    '"""doc "quoted" it\'s"""\n\'\'\'x\'\'\'\n"a""b"\n\x00\x1f\x7f ~ `\n',
    "'unterminated \\\nnext \" line\n",
    "a // b # c\n///\n#\n//",
    "é = ñ + 'ü' # ç\nnaïve_name = 3é + x\u00b2\n",
    "x\u0661\u0662 = \u0661\u0662\u0663é.β \u0663x\u3000y\u00a0z\n",
    "s = '\U0001f600' + x\n",
    "\U0001d518x = \U0001d7d9\U0001d7d8 + x\U0001d518y  # \U0001f600\nz = '\U0001f600'\n",
]


# shingles' token regex with line breaks as tokens; comments and indentation removed first.
_LINE_TOKEN_RE = re.compile(
    r"""[A-Za-z_][A-Za-z_0-9]*+"""
    r"""|\d[\w.]*+"""
    r"""|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'"""
    r"""|[^\sA-Za-z_0-9]|\n"""
)
_SKIPPED_RE = re.compile(r"(?m)^[ \t]+|(?:#|//).*$")


def _regex_tokens(text: str) -> tuple[list[str], list[int]]:
    """Tokens and 0-based lines as the regular-expression tokeniser gives them."""
    tokens, lines, line = [], [], 0
    for token in _LINE_TOKEN_RE.findall(_SKIPPED_RE.sub("", text)):
        if token == "\n":
            line += 1
        else:
            tokens.append(token)
            lines.append(line)
    return tokens, lines


@pytest.mark.parametrize("text", TOKEN_TEXTS + _stdlib_texts())
def test_scan_tokens_equals_regex_tokeniser(text: str) -> None:
    text = "\n".join(text.splitlines()) if "\r" in text or "\x0c" in text else text
    found = scan_tokens(text)
    tokens = [text[a:b] for a, b in zip(found.starts.tolist(), found.ends.tolist(), strict=True)]
    assert (tokens, found.lines.tolist()) == _regex_tokens(text)
    by_key = dict(zip(found.keys.tolist(), tokens, strict=True))
    assert len(by_key) == len(set(tokens))  # equal keys for equal tokens, and only for them


@pytest.mark.parametrize("astral", [False, True])
def test_file_tokens_hash_like_token_hashes_across_files(astral: bool) -> None:
    """The compiled scan and (for text beyond the BMP) the regular expression hash alike."""
    names = sorted(p.name for p in STDLIB.glob("*.py"))[:40] + ["textwrap.py", "heapq.py"]
    for name in names:
        text = "\n".join((STDLIB / name).read_text(errors="replace").splitlines())
        if astral:
            text += "\ns = '\U0001f600'\n"
        tokens = file_tokens(text)
        expected_tokens = [t for line in text.split("\n") for t in code_tokens(line)]
        for normalized, found in ((False, tokens.raw), (True, tokens.norm)):
            expected = token_hashes(expected_tokens, normalized=normalized)
            assert np.array_equal(found, expected), name
        assert len(tokens.lines) == len(expected_tokens)


def test_key_table_agrees_with_a_dict() -> None:
    rng = np.random.default_rng(0)
    table, reference = KeyTable(bits=4), {}
    for _ in range(20):
        keys = np.unique(rng.integers(0, 2**64, size=300, dtype=np.uint64))
        keys = keys[[int(k) not in reference for k in keys]]
        ids = np.arange(len(reference), len(reference) + len(keys))
        table.add(keys, ids)
        reference.update(zip(keys.tolist(), ids.tolist(), strict=True))
        probe = np.concatenate([keys, rng.integers(0, 2**64, size=50, dtype=np.uint64)])
        assert table.find(probe).tolist() == [reference.get(k, -1) for k in probe.tolist()]


def test_chunks_of_tabs_and_cr_lf_match_spaces_and_lf() -> None:
    text = (STDLIB / "textwrap.py").read_text()
    tabbed = text.replace("    ", "\t").replace("\n", "\r\n")
    spaced = text.replace("    ", "        ")
    assert [(c.start_line, c.end_line) for c in chunk_text(tabbed, "a.py")] == [
        (c.start_line, c.end_line) for c in chunk_text(spaced, "a.py")
    ]


def test_bm25_matrix_equals_bm25s() -> None:
    docs = [code_tokens(t.lower()) for t in _stdlib_texts()[0].split("\n\n") if t.strip()][:300]
    docs = [[w for w in d if w[0].isalpha()] or ["_"] for d in docs]
    reference = bm25s.BM25()
    reference.index(docs, show_progress=False)
    vocab = WordVocabulary()
    ids = np.concatenate([vocab.map(d) for d in docs])
    ours = bm25_matrix(ids, np.array([len(d) for d in docs]), len(vocab.words))
    ref = reference.scores
    assert ours["num_docs"] == ref["num_docs"] == len(docs)
    for word, i in vocab.ids.items():
        j = reference.vocab_dict[word]
        a, b = slice(ours["indptr"][i], ours["indptr"][i + 1]), slice(ref["indptr"][j], ref["indptr"][j + 1])
        assert np.array_equal(ours["indices"][a], ref["indices"][b])
        assert ours["data"][a].tobytes() == ref["data"][b].tobytes()


@pytest.mark.parametrize(("bands", "rows"), [(25, 5), (1, 3), (2, 4), (32, 4), (33, 3)])
def test_tagged_band_keys_equal_the_numpy_definition(bands: int, rows: int) -> None:
    from datasketch.minhash import _fmix

    from attribution import kernels
    from attribution.lsh import _BAND_BASE

    rng = np.random.default_rng(bands * 100 + rows)
    signatures = rng.integers(0, 2**32, size=(50, bands * rows + 3), dtype=np.uint32)
    # Each band: the polynomial of its rows in the base, MurmurHash-mixed, band number on top.
    sig = signatures.astype(np.uint64)[:, : bands * rows].reshape(-1, bands, rows)
    acc = np.zeros(sig.shape[:2], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows):
            acc = acc * _BAND_BASE + sig[:, :, j]
        keys = np.ascontiguousarray(_fmix(acc, 64).T)
    bits = max(1, int(bands - 1).bit_length())
    tag = (np.arange(bands, dtype=np.uint64) << np.uint64(64 - bits))[:, None]
    expected = ((keys >> np.uint64(bits)) | tag).ravel()
    got = kernels.tagged_band_keys(signatures, bands, rows, _BAND_BASE)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, expected)


def test_known_bands_equal_datasketch_optimiser() -> None:
    from datasketch.lsh import _optimal_param

    for (threshold, num_perm), bands in KNOWN_BANDS.items():
        assert tuple(int(v) for v in _optimal_param(threshold, num_perm, 0.5, 0.5)) == bands


# The literal grammar of the Python line scan, as a regular expression: a triple-quoted string,
# a one-line string (a backslash escapes any character, a line break included), a comment.
_LITERAL_RE = re.compile(
    r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'
    r"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
    r"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'"
    r"|#[^\n]*",
    re.S,
)


def _reference_python_lines(text: str, n_lines: int) -> tuple[list, list, list, list]:
    """``kernels.python_lines`` from the regular expression and a character loop."""
    in_literal = [False] * len(text)
    for match in _LITERAL_RE.finditer(text):
        in_literal[match.start() : match.end()] = [True] * (match.end() - match.start())
    continued, depth, line = [False] * n_lines, 0, 0
    for i, char in enumerate(text):
        if char == "\n":
            if line + 1 < n_lines:
                continued[line + 1] = in_literal[i] or depth > 0 or (i > 0 and text[i - 1] == "\\")
            line += 1
        elif not in_literal[i] and char in "([{":
            depth += 1
        elif not in_literal[i] and char in ")]}":
            depth = max(depth - 1, 0)
    first, indent, blank, start = [], [], [], 0
    for line_text in text.split("\n")[:n_lines]:
        spaces = len(line_text) - len(line_text.lstrip(" "))
        first.append(start + spaces)
        indent.append(spaces)
        blank.append(spaces == len(line_text))
        start += len(line_text) + 1
    return continued, first, indent, blank


PYTHON_LINE_TEXTS = [
    'x = """abc\n',
    "x = '''a\\",
    "a = (1,\n 2)\ndef f():\n  pass\n",
    "'\\\n'\ndef g(): pass",
    ")))\ndef f():\n x\n",
    '"""""""\ndef f(): pass',
    "#\\\ndef f(): pass\n",
    "s = 'a\\\nb'\nclass A:\n  def m(self): pass\n  x=1\n",
    'f("(", \'[\', """{\n""")\n  # (\ny = [\n]\n',
    "é = ('ü',\n  1)\n",
]


@pytest.mark.parametrize("text", PYTHON_LINE_TEXTS + _stdlib_texts())
def test_python_line_scan_equals_regex_reference(text: str) -> None:
    from attribution import kernels
    from attribution.chunking import _code_units

    n_lines = len(text.splitlines())
    found = kernels.python_lines(_code_units(text), n_lines)
    expected = _reference_python_lines(text, n_lines)
    assert [a.tolist() for a in found] == [list(e) for e in expected]


def test_scan_normalises_tokens_like_token_hashes() -> None:
    tokens = ["é", "²", "_x", "self", "ID", "'a'", '"b"', "'", "+", "3.5", "\u0663", "Name", "x1"]
    tokens = ["\U0001d518", "\U0001d7d9\U0001d7d8", "'\U0001f600'", "\U0001f600", *tokens]  # past the BMP
    text = " ".join(tokens)
    found = file_tokens(text)
    assert found.texts(np.arange(len(found.raw))) == tokens
    assert found.raw.tolist() == token_hashes(tokens).tolist()
    assert found.norm.tolist() == token_hashes(tokens, normalized=True).tolist()


def test_window_hashes_are_the_polynomial_of_each_window() -> None:
    """The compiled window hash (rolling at stride 1) against the definition, in Python integers."""
    from attribution.normalize import _BASE, WINDOW

    def fmix64(h: int) -> int:
        mask = 2**64 - 1
        for shift, mult in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):
            h ^= h >> shift
            h = (h * mult) & mask
        return h ^ (h >> 33)

    text = "def f(x): return x * 2  # é ünïcode " * 5
    codes = [ord(c) for c in text]
    for stride in (1, WINDOW):
        hashes, offsets = window_hashes(text, stride)
        assert offsets.tolist() == list(range(0, len(text) - WINDOW + 1, stride))
        for k, start in enumerate(offsets.tolist()):
            acc = 0
            for c in codes[start : start + WINDOW]:
                acc = (acc * int(_BASE) + c) % 2**64
            assert int(hashes[k]) == fmix64(acc)


def test_other_line_breaks_are_where_splitlines_splits() -> None:
    from attribution.normalize import has_other_line_breaks

    for code in range(0x3000):
        text = f"a\n{chr(code)}b é" if code % 2 else f"a\n{chr(code)}b"  # ASCII and non-ASCII texts
        assert has_other_line_breaks(text) == (len(text.splitlines()) > len(text.split("\n"))), hex(code)
    assert has_other_line_breaks("x = 1\r\ny = 2\n")
    assert not has_other_line_breaks("x = 1\n\ty = 'ü'\n")
