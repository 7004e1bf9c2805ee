"""Split source text into chunks for near-duplicate search: functions and classes from a parse.

Languages with a tree-sitter grammar installed are parsed (error-tolerant, so a snippet cut out
of a file still yields its functions); a chunk is a function or method with its decorators
(nested functions stay in their parent), the head of a class up to its first method, and runs of
module-level code. Other files, and the parts a parse leaves over, are cut into windows of lines.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

__all__ = ["Chunk", "chunk_text", "language_of", "GRAMMARS", "WINDOW_LINES"]

WINDOW_LINES = 30  # lines per window where no parse applies
_MIN_LEFTOVER_LINES = 3  # shorter runs of module-level code are not chunks

# Grammars by file extension -> (module providing ``language()``, node types that are chunks).
GRAMMARS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".py": ("tree_sitter_python", ("function_definition", "class_definition")),
    ".pyi": ("tree_sitter_python", ("function_definition", "class_definition")),
}
_FUNCTION_TYPES = frozenset({"function_definition"})
_DECORATED = "decorated_definition"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A range of lines, 1-based and inclusive."""

    start_line: int
    end_line: int


def language_of(path: str) -> str | None:
    """The grammar key for a file path (its extension) or None when no grammar applies."""
    dot = path.rfind(".")
    ext = path[dot:].lower() if dot >= 0 else ""
    return ext if ext in GRAMMARS else None


_local = threading.local()


@cache
def _language(module_name: str):
    import importlib

    from tree_sitter import Language

    return Language(importlib.import_module(module_name).language())


def _parser(module_name: str):
    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if module_name not in parsers:
        from tree_sitter import Parser

        parsers[module_name] = Parser(_language(module_name))
    return parsers[module_name]


def _windows(start: int, end: int, size: int = WINDOW_LINES) -> list[Chunk]:
    """Windows of at most ``size`` lines covering ``[start, end]``."""
    return [Chunk(s, min(s + size - 1, end)) for s in range(start, end + 1, size)]


def _parsed_chunks(text: str, module_name: str, types: tuple[str, ...]) -> list[Chunk]:
    tree = _parser(module_name).parse(text.encode("utf-8"))
    chunks: list[Chunk] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        for child in reversed(node.children):
            kind = child.type
            target = child
            if kind == _DECORATED:
                target = child.child_by_field_name("definition") or child
                kind = target.type
            if kind in _FUNCTION_TYPES and kind in types:
                chunks.append(Chunk(child.start_point[0] + 1, child.end_point[0] + 1))
            elif kind in types:  # a class: its head is a chunk, its members are searched
                body = target.child_by_field_name("body")
                first_def = next(
                    (c for c in (body.children if body else []) if c.type in (_DECORATED, *types)), None
                )
                head_end = first_def.start_point[0] if first_def else child.end_point[0] + 1
                chunks.append(Chunk(child.start_point[0] + 1, max(child.start_point[0] + 1, head_end)))
                if body is not None:
                    stack.append(body)
            elif child.child_count and kind not in ("string", "comment"):
                stack.append(child)
    return chunks


def _fill_gaps(chunks: list[Chunk], lines: list[str]) -> list[Chunk]:
    """Add windows over runs of non-blank lines that no chunk covers."""
    covered = bytearray(len(lines) + 2)
    for c in chunks:
        covered[c.start_line : c.end_line + 1] = b"\x01" * (c.end_line - c.start_line + 1)
    out = list(chunks)
    run_start = None
    for number in range(1, len(lines) + 2):
        free = number <= len(lines) and not covered[number]
        if free and run_start is None:
            run_start = number
        elif not free and run_start is not None:
            block = lines[run_start - 1 : number - 1]
            if sum(1 for line in block if line.strip()) >= _MIN_LEFTOVER_LINES:
                out.extend(_windows(run_start, number - 1))
            run_start = None
    return sorted(out, key=lambda c: (c.start_line, c.end_line))


def chunk_text(text: str, path: str = "") -> list[Chunk]:
    """Chunks of a text; ``path`` (its extension) selects the grammar."""
    lines = text.splitlines()
    if not lines:
        return []
    grammar = language_of(path) if path else ".py"
    if grammar is None:
        return [
            c
            for c in _windows(1, len(lines))
            if any(line.strip() for line in lines[c.start_line - 1 : c.end_line])
        ]
    module_name, types = GRAMMARS[grammar]
    return _fill_gaps(_parsed_chunks(text, module_name, types), lines)
