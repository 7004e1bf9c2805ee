"""Chunking workspace files by the parse."""

from __future__ import annotations

from lsp_server.chunking import MAX_CHUNK_LINES, chunk_file

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


def test_python_definitions_are_chunks() -> None:
    chunks = chunk_file("/w/a.py", SOURCE)
    texts = [c.text for c in chunks]
    assert any(t.startswith("def first") for t in texts)
    assert any(t.startswith("@decorator\ndef second") for t in texts)
    assert any(t.startswith("class Small") for t in texts)
    loose = [c for c in chunks if "import os" in c.text]
    assert loose and "CONSTANT = 1" in loose[0].text and "def first" not in loose[0].text
    for c in chunks:
        assert c.text == "".join(SOURCE.splitlines(keepends=True)[c.start_line : c.end_line + 1])


def test_long_class_is_split_into_methods_with_the_class_line() -> None:
    body = "".join(f"    def m{i}(self):\n" + "        x = 1\n" * 10 + "\n" for i in range(8))
    src = "class Big:\n    '''doc'''\n\n" + body
    chunks = chunk_file("/w/big.py", src)
    assert len(chunks) >= 8
    method_chunks = [c for c in chunks if "def m3" in c.text]
    assert method_chunks and method_chunks[0].text.startswith("class Big:")
    assert all(c.end_line - c.start_line + 1 <= MAX_CHUNK_LINES for c in chunks)


def test_syntax_errors_still_chunk_and_other_languages_use_windows() -> None:
    assert chunk_file("/w/broken.py", "def f(:\n    pass\n\ndef g():\n    return 1\n")
    js = "".join(f"function f{i}() {{ return {i}; }}\n" for i in range(100))
    chunks = chunk_file("/w/a.js", js)
    assert len(chunks) >= 3 and chunks[0].start_line == 0 and chunks[-1].end_line == 99
    assert chunk_file("/w/empty.py", "") == []
