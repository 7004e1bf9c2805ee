"""Labelled copies of real code for measuring the detectors (tests and benchmarks/attribution_bench.py).

From indexed Python files it draws functions and excerpts and derives the copies a code model
might emit: ``verbatim`` (a 30-line excerpt), ``partial`` (one function taken out of its file and
dedented), ``renamed`` (the function's name, parameters and local variables renamed, layout
kept) and ``reformatted`` (the function re-printed by ``ast.unparse``: comments, blank lines,
quotes and wrapping change). Code from outside the corpus gives the negatives.
"""

from __future__ import annotations

import ast
import io
import random
import textwrap
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from attribution.report import Report
from attribution.sources import SourceFile

__all__ = [
    "Sample",
    "rename_identifiers",
    "reformat",
    "functions_of",
    "make_samples",
    "outside_samples",
    "is_hit",
    "Tally",
    "TRANSFORMS",
]

TRANSFORMS = ("verbatim", "partial", "renamed", "reformatted")


@dataclass(frozen=True)
class Sample:
    """A query with its truth: where it comes from (None for code outside the corpus)."""

    transform: str  # one of TRANSFORMS, or "outside"
    text: str
    repo: str | None = None
    path: str | None = None
    start_line: int = 0  # lines of the origin in its file, 1-based inclusive
    end_line: int = 0


def rename_identifiers(source: str) -> str:
    """Rename a function's name, parameters and local variables, keeping its layout and comments."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
            args = node.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
                if arg is not None and arg.arg not in ("self", "cls"):
                    names.add(arg.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    mapping = {name: f"renamed_{i}" for i, name in enumerate(sorted(names))}
    out: list[tokenize.TokenInfo] = []
    previous = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.string in mapping and not (previous and previous.string == "."):
            tok = tok._replace(string=mapping[tok.string])
        out.append(tok)
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            previous = tok
    return tokenize.untokenize(out)


def reformat(source: str) -> str:
    """Re-print code from its syntax tree: comments and blank lines go, quotes and wrapping change."""
    return ast.unparse(ast.parse(source)) + "\n"


@dataclass(frozen=True)
class _Function:
    file: SourceFile
    start_line: int
    end_line: int
    text: str


def functions_of(file: SourceFile, min_lines: int = 8, max_lines: int = 80) -> list[_Function]:
    """Top-level functions and methods of a Python file within a size range (decorators excluded)."""
    try:
        tree = ast.parse(file.content)
    except (SyntaxError, ValueError):
        return []
    lines = file.content.splitlines()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
            size = node.end_lineno - node.lineno + 1
            if min_lines <= size <= max_lines:
                text = textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno])) + "\n"
                try:
                    ast.parse(text)
                except SyntaxError:
                    continue
                found.append(_Function(file, node.lineno, node.end_lineno, text))
    return found


def make_samples(files: Sequence[SourceFile], per_transform: int, seed: int = 0) -> list[Sample]:
    """Copies of corpus code under each transformation, ``per_transform`` of each."""
    rng = random.Random(seed)
    python = [f for f in files if f.path.endswith(".py")]
    functions = [fn for f in python for fn in functions_of(f)]
    rng.shuffle(functions)
    samples: list[Sample] = []
    used = 0
    for transform, change in (("partial", None), ("renamed", rename_identifiers), ("reformatted", reformat)):
        made = 0
        while made < per_transform and used < len(functions):
            fn = functions[used]
            used += 1
            try:
                text = change(fn.text) if change else fn.text
            except (SyntaxError, tokenize.TokenError, ValueError):
                continue
            if change and text.strip() == fn.text.strip():
                continue
            samples.append(Sample(transform, text, fn.file.repo, fn.file.path, fn.start_line, fn.end_line))
            made += 1
    long_files = [f for f in python if f.content.count("\n") >= 60]
    for _ in range(per_transform if long_files else 0):
        f = rng.choice(long_files)
        lines = f.content.splitlines()
        start = rng.randrange(0, len(lines) - 30)
        text = "\n".join(lines[start : start + 30]) + "\n"
        samples.append(Sample("verbatim", text, f.repo, f.path, start + 1, start + 30))
    return samples


def outside_samples(files: Iterable[SourceFile], count: int, seed: int = 1) -> list[Sample]:
    """Functions from code that is not in the corpus: the negatives."""
    rng = random.Random(seed)
    functions = [fn for f in files if f.path.endswith(".py") for fn in functions_of(f)]
    rng.shuffle(functions)
    return [Sample("outside", fn.text) for fn in functions[:count]]


def is_hit(sample: Sample, report: Report, kinds: Iterable[str], near_threshold: float = 0.7) -> bool:
    """Whether a copied-level match of one of ``kinds`` points at the sample's origin (file and lines)."""
    kinds = set(kinds)
    for m in report.matches:
        if m.kind not in kinds or (m.kind == "near" and m.score < near_threshold):
            continue
        same_file = m.repo == sample.repo and m.path == sample.path
        if same_file and m.source_start_line <= sample.end_line and sample.start_line <= m.source_end_line:
            return True
    return False


def fires(report: Report, kinds: Iterable[str], near_threshold: float = 0.7) -> bool:
    """Whether a detector of ``kinds`` reports anything at the copied level."""
    kinds = set(kinds)
    return any(m.kind in kinds and (m.kind != "near" or m.score >= near_threshold) for m in report.matches)


@dataclass
class Tally:
    """Recall per transformation and precision, for one detector (or the verdict)."""

    hits: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    true_positives: int = 0
    false_positives: int = 0
    outside_flags: int = 0  # flags raised on code from outside the corpus

    def add(self, transform: str, fired: bool, correct: bool) -> None:
        """Count one query: whether the detector fired, and whether it found the right origin."""
        self.totals[transform] = self.totals.get(transform, 0) + 1
        if transform == "outside":
            self.false_positives += int(fired)
            self.outside_flags += int(fired)
            return
        self.hits[transform] = self.hits.get(transform, 0) + int(correct)
        self.true_positives += int(correct)
        self.false_positives += int(fired and not correct)

    def recall(self, transform: str) -> float:
        """Share of the copies of a transformation found at their origin."""
        return self.hits.get(transform, 0) / max(1, self.totals.get(transform, 0))

    @property
    def precision(self) -> float:
        """Share of flags that point at the right origin (flags on outside code are false)."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0
