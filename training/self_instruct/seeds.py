"""Seed gathering: documented Python functions from a corpus, filtered as in StarCoder2-Instruct.

A seed is one top-level function with a docstring, preceded by the module's imports it uses.
Static filters (a registry: name -> predicate) drop functions without a return value or
arguments, longer than 150 lines, with TODO/FIXME, importing system-level modules, or that do
not stand alone; then decontamination against the benchmarks (``training.decontam``) and MinHash
near-deduplication at Jaccard 0.5 (``attribution.shingles`` + datasketch LSH).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "Seed",
    "FILTERS",
    "BANNED_IMPORTS",
    "extract_seeds",
    "filter_seed",
    "near_dedup",
    "decontaminate",
]

MAX_LINES = 150
# Modules whose use makes a function about the system rather than about computation (and unsafe or
# meaningless to execute in the sandbox).
BANNED_IMPORTS = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "argparse",
        "setuptools",
        "distutils",
        "shutil",
        "socket",
        "multiprocessing",
        "threading",
        "asyncio",
        "signal",
        "ctypes",
        "pathlib",
        "glob",
        "tempfile",
        "requests",
        "urllib",
        "http",
        "logging",
        "pickle",
        "sqlite3",
        "io",
        "importlib",
        "platform",
    }
)
_TODO_RE = re.compile(r"\b(TODO|FIXME|XXX)\b")


@dataclass
class Seed:
    """One candidate seed function."""

    id: str  # content hash of ``code``
    repo: str
    path: str
    license: str
    name: str  # function name
    code: str  # the imports it uses + the function's source
    docstring: str

    def to_dict(self) -> dict:
        return asdict(self)


def _used_names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            root = sub
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name):
                names.add(root.id)
    return names


def _imports_used(module: ast.Module, func: ast.FunctionDef) -> tuple[list[str], list[str]]:
    """Import lines of ``module`` binding names that ``func`` uses, and the modules they come from."""
    used = _used_names(func)
    lines, modules = [], []
    for stmt in module.body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound in used:
                    lines.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
                    modules.append(alias.name)
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                bound = alias.asname or alias.name
                if bound in used:
                    prefix = "." * stmt.level + (stmt.module or "")
                    lines.append(
                        f"from {prefix} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                    )
                    modules.append(prefix)
    return lines, modules


def _inner_imports(func: ast.FunctionDef) -> list[str]:
    out = []
    for sub in ast.walk(func):
        if isinstance(sub, ast.Import):
            out += [a.name for a in sub.names]
        elif isinstance(sub, ast.ImportFrom):
            out.append("." * sub.level + (sub.module or ""))
    return out


def _returns_value(func: ast.FunctionDef) -> bool:
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        if (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue  # a nested function's return is not ours
        stack.extend(ast.iter_child_nodes(node))
    return False


def _argument_count(func: ast.FunctionDef) -> int:
    args = func.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return len([n for n in names if n not in ("self", "cls")])


@dataclass
class _Candidate:
    func: ast.FunctionDef
    code: str
    modules: list[str]


# name -> predicate on a candidate; a seed must pass them all (the first failing name is the drop reason).
FILTERS: dict[str, Callable[[_Candidate], bool]] = {
    "no_return_value": lambda c: _returns_value(c.func),
    "no_arguments": lambda c: _argument_count(c.func) >= 1,
    "too_long": lambda c: c.code.count("\n") + 1 <= MAX_LINES,
    "todo_or_fixme": lambda c: not _TODO_RE.search(c.code),
    "banned_import": lambda c: not any(m.lstrip(".").split(".")[0] in BANNED_IMPORTS for m in c.modules),
    "relative_import": lambda c: not any(m.startswith(".") for m in c.modules),
    "short_docstring": lambda c: len((ast.get_docstring(c.func) or "").split()) >= 3,
}


def filter_seed(candidate: _Candidate) -> str | None:
    """The name of the first filter ``candidate`` fails, or None when it passes them all."""
    for name, keep in FILTERS.items():
        if not keep(candidate):
            return name
    return None


def _outside_stdlib(modules: Iterable[str]) -> bool:
    """Whether any of a seed's imported modules is outside Python's standard library."""
    import sys

    return any(m.split(".")[0] not in sys.stdlib_module_names for m in modules if m and not m.startswith("."))


def extract_seeds(files: Iterable, drops: Counter, *, stdlib_only: bool = False) -> Iterator[Seed]:
    """Seeds of every Python ``SourceFile`` (attribution.sources); counts drop reasons in ``drops``.

    ``stdlib_only`` also drops functions importing modules outside the standard library
    (``third_party_import``): their instructions ask for libraries the validating sandbox lacks.
    """
    for source in files:
        try:
            module = ast.parse(source.content)
        except (SyntaxError, ValueError):
            drops["unparsable_file"] += 1
            continue
        lines = source.content.splitlines()
        for node in module.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            if not ast.get_docstring(node):
                drops["no_docstring"] += 1
                continue
            start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            func_src = "\n".join(lines[start : node.end_lineno])
            import_lines, modules = _imports_used(module, node)
            modules += _inner_imports(node)
            code = ("\n".join(import_lines) + "\n\n\n" if import_lines else "") + func_src + "\n"
            reason = filter_seed(_Candidate(node, code, modules))
            if reason is None and stdlib_only and _outside_stdlib(modules):
                reason = "third_party_import"
            if reason is None:
                try:
                    ast.parse(code)
                except SyntaxError:
                    reason = "not_standalone"
            if reason is not None:
                drops[reason] += 1
                continue
            yield Seed(
                id=hashlib.sha1(code.encode()).hexdigest()[:16],
                repo=source.repo,
                path=source.path,
                license=source.license,
                name=node.name,
                code=code,
                docstring=ast.get_docstring(node) or "",
            )


def decontaminate(
    seeds: Iterable[Seed],
    drops: Counter,
    benchmarks: tuple[str, ...] = ("humaneval",),
    files: Sequence[str] = (),
) -> list[Seed]:
    """Drop seeds that contain a benchmark problem: the named benchmarks of ``training.decontam``
    plus the programs of benchmark jsonl ``files`` (e.g. MBPP's, which no installed package ships)."""
    from training.decontam import Decontaminator

    checker = Decontaminator.for_benchmarks(benchmarks, files)
    kept = []
    for seed in seeds:
        if checker.match(seed.code):
            drops["benchmark_contamination"] += 1
        else:
            kept.append(seed)
    return kept


def near_dedup(seeds: Iterable[Seed], drops: Counter, threshold: float = 0.5) -> list[Seed]:
    """Keep the first of every group of seeds whose 5-gram token shingles overlap at Jaccard >= threshold."""
    from datasketch import MinHashLSH

    from attribution.shingles import DEFAULT_NUM_PERM, code_tokens, minhash_of, shingles

    lsh = MinHashLSH(threshold=threshold, num_perm=DEFAULT_NUM_PERM)
    kept, seen = [], set()
    for seed in seeds:
        if seed.id in seen:
            drops["exact_duplicate"] += 1
            continue
        seen.add(seed.id)
        signature = minhash_of(shingles(code_tokens(seed.code)))
        if lsh.query(signature):
            drops["near_duplicate"] += 1
            continue
        lsh.insert(seed.id, signature)
        kept.append(seed)
    return kept
