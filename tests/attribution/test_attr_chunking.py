"""The one chunker, as workspace retrieval uses it: chunks with their text, 1-based lines."""

from __future__ import annotations

from attribution.chunking import chunk_text

SOURCE = """import os

CONSTANT = 1


def first(x):
    return x + 1


@decorator
def second(y):
    return y * 2


class Small:
    def method(self):
        return 3
"""


def test_definitions_are_chunks_with_their_text_and_1_based_lines() -> None:
    chunks = chunk_text(SOURCE, "/w/a.py", min_lines=1)
    lines = SOURCE.splitlines(keepends=True)
    for c in chunks:
        assert c.path == "/w/a.py" and 1 <= c.start_line <= c.end_line <= len(lines)
        assert c.text == "".join(lines[c.start_line - 1 : c.end_line])
    spans = {c.text.split("\n")[0]: (c.start_line, c.end_line) for c in chunks}
    assert spans["def first(x):"] == (6, 7)
    assert spans["@decorator"] == (10, 12)
    assert spans["class Small:"] == (15, 15) and spans["    def method(self):"] == (16, 17)
    loose = [c for c in chunks if "import os" in c.text]
    assert loose and "CONSTANT = 1" in loose[0].text and "def first" not in loose[0].text


def test_short_module_level_runs_are_left_out_unless_asked_for() -> None:
    assert chunk_text("import os\n\nCONSTANT = 1\n", "a.py") == []
    (chunk,) = chunk_text("import os\n\nCONSTANT = 1\n", "a.py", min_lines=1)
    assert (chunk.start_line, chunk.end_line) == (1, 3)


def test_long_definitions_are_cut_into_windows() -> None:
    src = "def big():\n" + "    x = 1\n" * 150
    assert [(c.start_line, c.end_line) for c in chunk_text(src, "big.py")] == [(1, 151)]
    windows = chunk_text(src, "big.py", max_lines=60)
    assert [(c.start_line, c.end_line) for c in windows] == [(1, 60), (61, 120), (121, 151)]
    assert "".join(c.text for c in windows) == src


def test_syntax_errors_still_chunk_and_other_languages_use_windows() -> None:
    assert chunk_text("def f(:\n    pass\n\ndef g():\n    return 1\n", "/w/broken.py")
    js = "".join(f"function f{i}() {{ return {i}; }}\n" for i in range(100))
    chunks = chunk_text(js, "/w/a.js")
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 30), (31, 60), (61, 90), (91, 100)]
    assert chunk_text("", "/w/empty.py") == []
