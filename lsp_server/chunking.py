"""Split workspace files into retrieval chunks, by the parse where a grammar is available.

Python files are parsed with tree-sitter (it tolerates the syntax errors of code being typed):
each top-level function or class is a chunk (long classes are split into their methods), and the
statements between definitions are grouped into chunks of their own. Other files are cut into
overlapping windows of lines. The parser only reads text; workspace code is never executed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from lsp_server.imports import native_init

__all__ = ["Chunk", "chunk_file", "CHUNKERS"]

MAX_CHUNK_LINES = 60  # definitions longer than this are split (classes into methods, the rest into windows)
WINDOW_LINES = 40
WINDOW_STRIDE = 30
DEFINITIONS = {"function_definition", "class_definition", "decorated_definition"}


@dataclass(frozen=True)
class Chunk:
    """Lines ``start_line``..``end_line`` (0-based, inclusive) of one file."""

    path: str
    start_line: int
    end_line: int
    text: str


def _windows(path: str, lines: list[str], start: int, end: int) -> list[Chunk]:
    out = []
    i = start
    while i <= end:
        j = min(i + WINDOW_LINES - 1, end)
        text = "".join(lines[i : j + 1])
        if text.strip():
            out.append(Chunk(path, i, j, text))
        if j == end:
            break
        i += WINDOW_STRIDE
    return out


def chunk_lines(path: str, text: str) -> list[Chunk]:
    """Overlapping windows of lines (any language)."""
    lines = text.splitlines(keepends=True)
    return _windows(path, lines, 0, len(lines) - 1) if lines else []


@lru_cache(maxsize=1)
def _python_parser():  # noqa: ANN202 - tree_sitter.Parser, imported lazily
    with native_init():
        import tree_sitter_python
        from tree_sitter import Language, Parser

        return Parser(Language(tree_sitter_python.language()))


def _inner_definition(node):  # noqa: ANN001, ANN202
    if node.type == "decorated_definition":
        inner = node.child_by_field_name("definition")
        return inner if inner is not None else node
    return node


def _split_class(path: str, lines: list[str], node) -> list[Chunk]:  # noqa: ANN001
    """A long class: its header and each method as chunks (methods keep the class line for context)."""
    cls = _inner_definition(node)
    body = cls.child_by_field_name("body")
    out: list[Chunk] = []
    pending_start = node.start_point[0]
    class_line = lines[cls.start_point[0]] if cls.start_point[0] < len(lines) else ""
    for child in body.children if body is not None else []:
        if child.type in DEFINITIONS:
            if child.start_point[0] - 1 >= pending_start:
                out += _windows(path, lines, pending_start, child.start_point[0] - 1)
            s, e = child.start_point[0], child.end_point[0]
            if e - s + 1 > MAX_CHUNK_LINES:
                out += _windows(path, lines, s, e)
            else:
                out.append(Chunk(path, s, e, class_line + "".join(lines[s : e + 1])))
            pending_start = e + 1
    end = node.end_point[0]
    if pending_start <= end:
        out += _windows(path, lines, pending_start, end)
    return out


def chunk_python(path: str, text: str) -> list[Chunk]:
    """Chunks of a Python file by its tree-sitter parse."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return []
    tree = _python_parser().parse(text.encode("utf-8", "surrogatepass"))
    out: list[Chunk] = []
    loose_start: int | None = None
    last = len(lines) - 1

    def flush(upto: int) -> None:
        nonlocal loose_start
        if loose_start is not None and upto >= loose_start:
            out.extend(_windows(path, lines, loose_start, min(upto, last)))
        loose_start = None

    for node in tree.root_node.children:
        s, e = node.start_point[0], min(node.end_point[0], last)
        if node.type in DEFINITIONS:
            flush(s - 1)
            if e - s + 1 <= MAX_CHUNK_LINES:
                out.append(Chunk(path, s, e, "".join(lines[s : e + 1])))
            elif _inner_definition(node).type == "class_definition":
                out.extend(_split_class(path, lines, node))
            else:
                out.extend(_windows(path, lines, s, e))
        elif loose_start is None:
            loose_start = s
    flush(last)
    return out


# File suffix -> chunker; files of other suffixes are cut into windows of lines.
CHUNKERS: dict[str, Callable[[str, str], list[Chunk]]] = {".py": chunk_python, ".pyi": chunk_python}


def chunk_file(path: str, text: str) -> list[Chunk]:
    """Chunks of one file, by the parse where its language has a chunker."""
    suffix = path[path.rfind(".") :].lower() if "." in path else ""
    return CHUNKERS.get(suffix, chunk_lines)(path, text)
